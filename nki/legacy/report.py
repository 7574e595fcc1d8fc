"""Migration aid: the legacy (``neuronxcc.nki``) constructs a kernel used, each with the NKI 0.6
spelling to port it to.

Opt in with ``nki.legacy.install(report=True)`` or ``NEURON_EMU_LEGACY_REPORT=1``. Each legacy
kernel then prints, after it is traced, one line per construct and source line, e.g.::

    legacy constructs in add (port to NKI 0.6):
      kernel.py:9    nl.mgrid index expression -> slices: t[0:128, 0:512] (or nl.ds(start, size))
      kernel.py:11   mask= predicate           -> clip the slice instead: t[0:min(n, 128)]

``migration_report()`` returns every entry recorded so far (and the same text via ``format``).
Nothing is recorded while the report is off, so kernels pay nothing for it.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from device.errors import user_loc
from device.settings import settings

# key -> (what the legacy code wrote, how to write it in NKI 0.6)
SPELLINGS = {
    "arange": ("nl.arange index expression",
               "slices t[a:b, c:d] or nl.ds(start, size); t.ap([[stride, n], ...]) for strides"),
    "mgrid": ("nl.mgrid index expression",
              "slices t[0:P, 0:F] (or nl.ds(start, size))"),
    "mask": ("mask= predicate", "clip the slice instead: t[0:min(n, 128)]"),
    "mask-and": ("mask predicates joined with Python 'and'",
                 "'and' keeps only the right-hand comparison; clip both slices (or '&' in legacy)"),
    "isa-return": ("return-style nisa call r = nisa.{op}(...)",
                   "allocate r = nl.ndarray(shape, dtype, buffer=nl.sbuf), then "
                   "nisa.{op}(dst=r, ...)"),
    "isa-dtype": ("dtype= on an ISA call", "the output dtype is dst.dtype: allocate dst with it"),
    "numpy-op": ("NumPy function as an op ({op})", "the nl token: op=nl.{new}"),
    "memset": ("nisa.memset(shape, value, dtype)",
               "t = nl.ndarray(shape, dtype); nisa.memset(dst=t, value=value)"),
    "iota": ("nisa.iota(index expression, dtype)",
             "nisa.iota(dst=t, pattern={pattern}, offset={offset}, channel_multiplier={cm})"),
    "affine_select": ("nisa.affine_select(pred, on_true_tile, on_false_value)",
                      "nisa.affine_select(dst=t, pattern={pattern}, channel_multiplier={cm}, "
                      "offset={offset}, cmp_op=nl.less, on_true_tile=x, on_false_value=v)"),
    "dma_rmw": ("nisa.dma_copy(..., dst_rmw_op=op)",
                "nisa.dma_compute(dst=d, srcs=[d, src], reduce_op=nl.add)"),
    "indirect": ("tile-indexed access t[idx_tile, ...]",
                 "t.ap([[row_elems, n], [1, m]], vector_offset=idx_tile, indirect_dim=0)"),
    "grid": ("kernel[g0, g1, ...] launch grid",
             "a Python loop over the grid inside the kernel (kernel[2] is LNC=2 in NKI 0.6)"),
    "program_id": ("nl.program_id(axis) of a launch grid",
                   "the loop variable of that Python loop (program_id is the core id in 0.6)"),
    "par_dim": ("nl.par_dim block dimensions",
                "a Python list of tiles, each with the partition dimension first"),
    "operator": ("tile operator a {op} b", "nl.{new}(a, b)"),
    "psum-accumulate": ("psum[...] += nisa.nc_matmul(...)",
                        "nisa.nc_matmul(dst=psum, stationary=a, moving=b, accumulate=True)"),
    "finfo": ("nl.fp32.min / nl.finfo(dtype)", "np.finfo(np.float32).min (a Python float)"),
    "static_cast": ("nl.static_cast(x, dtype)", "np.asarray(x).astype(dtype) outside the kernel"),
    "simulate_kernel": ("nki.simulate_kernel(kernel, *args)", "nki.simulate(kernel)(*args)"),
    "benchmark": ("nki.benchmark(...)(kernel)", "kernel.profile(*args) (modelled timing)"),
    "allocator": ("nki.compiler sbuf/psum allocators",
                  "drop them, or nl.ndarray(..., address=(partition, byte_offset))"),
}


@dataclass(frozen=True)
class Entry:
    """One legacy construct at one source line."""
    key: str
    legacy: str
    new: str
    loc: str
    kernel: str


_on = {"flag": None}          # None: follow the environment
_entries: dict = {}           # (key, legacy, loc, kernel) -> Entry, in first-seen order
_kernel = ["<no kernel>"]


def enable(on: bool | None = True) -> None:
    """Turn the report on or off (overrides ``NEURON_EMU_LEGACY_REPORT``); ``None`` goes back to
    following the environment variable."""
    _on["flag"] = None if on is None else bool(on)


def enabled() -> bool:
    f = _on["flag"]
    return settings().legacy_report if f is None else f


def note(key: str, **fmt) -> None:
    """Record that the user's current line uses legacy construct ``key`` (see ``SPELLINGS``)."""
    if not enabled():
        return
    legacy, new = SPELLINGS[key]
    legacy, new = legacy.format(**fmt), new.format(**fmt)
    loc = user_loc(2)
    where = str(loc) if loc is not None else "?"
    k = (key, legacy, where, _kernel[-1])
    if k not in _entries:
        _entries[k] = Entry(key, legacy, new, where, _kernel[-1])


def begin(kernel: str) -> int:
    """Start recording for ``kernel``; returns a mark for ``end``."""
    _kernel.append(kernel)
    return len(_entries)


def end(mark: int, out=None) -> None:
    """Stop recording for the current kernel; print its new entries if the report is on."""
    name = _kernel.pop()
    if not enabled():
        return
    new = [e for e in list(_entries.values())[mark:] if e.kernel == name]
    if new:
        print(format(new, title=f"legacy constructs in {name} (port to NKI 0.6):"),
              file=out or sys.stderr)


def migration_report() -> list:
    """Every entry recorded so far, in first-seen order."""
    return list(_entries.values())


def clear() -> None:
    _entries.clear()


def format(entries, title="legacy constructs (port to NKI 0.6):") -> str:  # noqa: A001
    """The entries as an aligned text table (location, legacy construct -> NKI 0.6 spelling)."""
    if not entries:
        return title + "\n  (none)"
    w_loc = max(len(e.loc) for e in entries)
    w_leg = max(len(e.legacy) for e in entries)
    rows = [f"  {e.loc:<{w_loc}}  {e.legacy:<{w_leg}} -> {e.new}" for e in entries]
    return "\n".join([title] + rows)
