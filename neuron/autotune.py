"""``@neuron.autotune``: tune a user NKI kernel's knobs against the timing model.

Stacked on ``@nki.jit``, Triton-style, but the objective is the calibrated timing model, not a
measurement: a kernel can be tuned from ``nki.ArraySpec``s with no data, the answer is
deterministic, and each winner is run on the emulator against ``reference=`` (when given) before
it is used or cached.

    import neuron, nki

    @neuron.autotune(configs=[dict(TILES_M=8), dict(TILES_M=16)], reference=my_numpy_matmul)
    @nki.jit
    def matmul(lhsT, rhs, TILES_M=16): ...

    out = matmul(a, b)                 # tunes on the first call for these shapes, then runs
    matmul.best_config                 # {'TILES_M': 16}
    print(matmul.tuning_report())

Configs: ``configs=[dict, ...]``, ``configs=callable(**shapes) -> [dict, ...]`` (called with each
array argument's shape by name), or ``space={name: [values]}`` (every combination). ``key``
names extra arguments whose *values* are part of the cache key (shapes, dtypes, target and the
timing-model version always are). ``prune_configs_by={'early_config_prune': f(configs, args),
'perf_model': f(**config) -> estimate, 'top_k': n}`` as in Triton. ``restore_value``: names of
arguments the kernel writes in place; verification runs on copies, so they are never modified.

Search: successive halving on the timing model. Every config is priced by *truncated pricing*
(``neuron.truncated``: the kernel traced with its outermost ``affine_range``/``sequential_range``
loop and one loop inside it cut to ``keep`` + 1 iterations, priced, extrapolated to the full trip
counts; exact when the loop body reaches a periodic steady state, which ``keep=(1, 2)`` lets the
inner loop do; a program of at most ``full_below`` instructions is priced in full). The
``confirm`` cheapest are priced again in full when their program has at most
``full_limit`` instructions; the winner is verified against ``reference=``. Jobs go to
``executor=`` (any ``concurrent.futures.Executor``) as small picklable tuples; a kernel defined
in a script run as ``__main__`` is found by the script's path in spawned or remote workers.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import time

import numpy as np

from device.arch import get_arch
from device.errors import UserKernelError
from lowering.tune import TIMING_MODEL_VERSION, TuningDB
from lowering.tune.tuner import arch_hash
from nki.tracing import ArraySpec, Kernel

from .truncated import FULL_BELOW, price


@dataclasses.dataclass
class ConfigResult:
    config: dict
    ns: float | None
    error: str = ""
    verified: str = ""
    how: str = ""                 # 'full' | 'truncated keep=..: loops' | 'cached'
    instructions: float = 0.0     # of the full program (extrapolated when truncated)


class Autotuner:
    """The object ``@neuron.autotune`` returns: call it like the kernel."""

    def __init__(self, kernel: Kernel, configs=None, space=None, key=(), reference=None,
                 prune_configs_by=None, restore_value=(), target=None, db=None, executor=None,
                 keep=(1, 2), confirm=2, full_limit=20000, full_below=FULL_BELOW):
        if not isinstance(kernel, Kernel):
            kernel = Kernel(kernel)
        given = [c is not None for c in (configs, space)]
        if sum(given) != 1:
            raise UserKernelError("neuron.autotune takes exactly one of configs= or space=")
        self.kernel, self.configs, self.space = kernel, configs, space
        self.key, self.reference = tuple(key), reference
        self.prune = dict(prune_configs_by or {})
        self.restore_value = tuple(restore_value)
        self.target, self.db, self.executor = target, db, executor
        self.keep, self.confirm, self.full_limit = keep, confirm, full_limit
        self.full_below = full_below
        self.best: dict = {}          # signature -> config
        self.results: dict = {}       # signature -> [ConfigResult]
        self.timings: dict = {}
        self.__name__ = getattr(kernel, "__name__", "kernel")
        self.__doc__ = kernel.__doc__

    # -- configurations -----------------------------------------------------------------------
    def _arrays(self, args, kwargs):
        import inspect
        bound = inspect.signature(self.kernel.fn).bind(*args, **kwargs)
        return {n: v for n, v in bound.arguments.items()
                if isinstance(v, ArraySpec) or hasattr(v, "shape")}

    def _configs(self, args, kwargs) -> list[dict]:
        if self.space is not None:
            names = sorted(self.space)
            out = [dict(zip(names, vals)) for vals in itertools.product(*(self.space[n]
                                                                         for n in names))]
        elif callable(self.configs):
            out = list(self.configs(**{n: tuple(v.shape)
                                       for n, v in self._arrays(args, kwargs).items()}))
        else:
            out = [dict(c) for c in self.configs]
        if not out:
            raise UserKernelError("neuron.autotune: no configurations to try")
        prune = self.prune.get("early_config_prune")
        if prune is not None:
            out = list(prune(out, self._arrays(args, kwargs)))
            if not out:
                raise UserKernelError("early_config_prune returned no configurations")
        model, top_k = self.prune.get("perf_model"), self.prune.get("top_k")
        if model is not None and top_k:
            k = max(1, int(top_k * len(out)) if isinstance(top_k, float) and top_k <= 1
                    else int(top_k))
            order = sorted(range(len(out)), key=lambda i: (model(**out[i]), i))
            out = [out[i] for i in sorted(order[:k])]
        return out

    def signature(self, args, kwargs, arch) -> str:
        parts = [arch.name, arch_hash(arch), TIMING_MODEL_VERSION, self.kernel.fn.__module__,
                 self.kernel.fn.__qualname__]
        for n, v in sorted(self._arrays(args, kwargs).items()):
            parts.append(f"{n}:{tuple(v.shape)}:{getattr(v, 'dtype', '')}")
        import inspect
        bound = inspect.signature(self.kernel.fn).bind(*args, **kwargs)
        for n in self.key:
            parts.append(f"{n}={bound.arguments.get(n)!r}")
        return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]

    # -- tuning -------------------------------------------------------------------------------
    def tune(self, *args, target=None, **kwargs) -> dict:
        """Tune for these arguments (arrays or ArraySpecs); returns the best config.

        Successive halving on the timing model: every config is priced by truncated pricing
        (``neuron.truncated``: main loops cut to a few iterations, extrapolated; exact when the
        loop body's steady state is periodic), the ``confirm`` cheapest are priced again in full
        when their program has at most ``full_limit`` instructions, and the winner is run
        against ``reference=`` before it is used or cached."""
        arch = get_arch(target or self.target)
        sig = self.signature(args, kwargs, arch)
        if sig in self.best:
            return self.best[sig]
        store = None if self.db is False else TuningDB(self.db)
        if store is not None:
            hit = store.best("kernel|" + sig)
            if hit is not None:
                self.best[sig] = json.loads(hit["schedule"])
                self.results[sig] = [ConfigResult(self.best[sig], hit["ns"], "", hit["verified"],
                                                  "cached")]
                return self.best[sig]
        t0 = time.perf_counter()
        configs = self._configs(args, kwargs)
        ref = kernel_ref(self.kernel)
        _LOADED[ref] = Kernel(self.kernel.fn, lnc=self.kernel.lnc)   # this process (and
        # forked workers) use the live kernel; other workers find it by ``ref``
        sargs, skw = _specs(args), _specs(kwargs)
        outs = self._map([(ref, c, sargs, skw, arch.name, (self.keep, self.full_below))
                          for c in configs])
        results = [ConfigResult(c, p.ns if p else None, err, "", p.how if p else "",
                                p.instructions if p else 0.0) for c, (p, err) in zip(configs, outs)]
        order = {id(r): i for i, r in enumerate(results)}

        def ranked():
            return sorted((r for r in results if r.ns is not None),
                          key=lambda r: (r.ns, order[id(r)]))
        top = [r for r in ranked()[:self.confirm]
               if r.how != "full" and r.instructions <= self.full_limit]
        for r, (p, err) in zip(top, self._map([(ref, r.config, sargs, skw, arch.name, "full")
                                                for r in top])):
            if p is not None:
                r.ns, r.how = p.ns, "full"
        best = ranked()
        if not best:
            raise UserKernelError("neuron.autotune: every configuration failed: " +
                                  "; ".join(f"{r.config}: {r.error}" for r in results))
        winner = None
        for r in best[:3]:
            r.verified = self._verify(r.config, args, kwargs, arch)
            if not r.verified.startswith("failed"):
                winner = r
                break
        if winner is None:
            raise UserKernelError("neuron.autotune: the three best configurations failed "
                                  "verification: " + "; ".join(f"{r.config}: {r.verified}"
                                                                for r in best[:3]))
        self.best[sig] = winner.config
        self.results[sig] = results
        self.timings[sig] = time.perf_counter() - t0
        if store is not None:
            store.put_best("kernel|" + sig, json.dumps(winner.config, sort_keys=True), winner.ns,
                           best[-1].ns, winner.verified, {"configs": len(configs)})
        return winner.config

    def _map(self, jobs):
        """Run pricing jobs here or on ``self.executor`` (a lost job is redone here)."""
        if self.executor is None or len(jobs) <= 1:
            return [_price_job(*j) for j in jobs]
        futs = [self.executor.submit(_price_job, *j) for j in jobs]
        out = []
        for j, f in zip(jobs, futs):
            try:
                out.append(f.result())
            except Exception:              # noqa: BLE001 - a crashed worker: price it here
                out.append(_price_job(*j))
        return out

    def _verify(self, config, args, kwargs, arch) -> str:
        if self.reference is None:
            return "priced only (no reference= given)"
        rng = np.random.default_rng(0)
        arrays = []
        for a in args:
            if hasattr(a, "shape"):
                dt = np.dtype(a.dtype) if not isinstance(a, ArraySpec) else None
                from device import dtypes as ddt
                npdt = dt if dt is not None else ddt.to_numpy(a.dtype)
                arrays.append((rng.standard_normal(a.shape) * 0.5).astype(npdt))
            else:
                arrays.append(a)
        try:
            got = Kernel(self.kernel.fn, lnc=self.kernel.lnc)(*[x.copy() if hasattr(x, "copy")
                                                                 else x for x in arrays],
                                                               **kwargs, **config)
            want = self.reference(*arrays, **kwargs)
        except Exception as e:             # noqa: BLE001 - recorded as the verdict
            return f"failed: {type(e).__name__}: {e}"
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        tol = 3e-2 if any(str(getattr(a, "dtype", "")) in ("bfloat16", "float16")
                          for a in arrays) else 1e-4
        if got.shape != want.shape or not np.allclose(got, want, rtol=tol, atol=tol):
            return f"failed: differs from reference= (max error {np.nanmax(np.abs(got - want)):.3g})"
        return "matches reference="

    @property
    def best_config(self) -> dict | None:
        """The config of the most recent tuning (None before the first call)."""
        return next(reversed(self.best.values()), None) if self.best else None

    def tuning_report(self) -> str:
        lines = []
        for sig, results in self.results.items():
            best = self.best[sig]
            lines.append(f"{self.__name__} [{sig}] best {best} "
                         f"({self.timings.get(sig, 0.0):.2f} s)")
            for r in sorted(results, key=lambda r: (r.ns is None, r.ns or 0)):
                t = f"{r.ns / 1e3:10.1f} us" if r.ns is not None else f"failed: {r.error}"
                mark = " <- best" if r.config == best else ""
                how = f" [{r.how}]" if r.how else ""
                lines.append(f"  {t}  {r.config}{how} {r.verified}{mark}")
        return "\n".join(lines)

    # -- calling ------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        config = self.tune(*args, **kwargs)
        return self.kernel(*args, **kwargs, **config)

    def profile(self, *args, target=None, **kwargs):
        config = self.tune(*args, target=target, **kwargs)
        return self.kernel.profile(*args, target=target, **kwargs, **config)


def _specs(x):
    if isinstance(x, dict):
        return {k: ArraySpec(v.shape, v.dtype) if hasattr(v, "shape") else v for k, v in x.items()}
    return [ArraySpec(a.shape, a.dtype) if hasattr(a, "shape") else a for a in x]


def kernel_ref(kernel) -> tuple:
    """How a worker finds the kernel: by module and name, else by its file's path (a script run
    as ``__main__`` -- a spawned or remote worker has another ``__main__`` -- or a file loaded
    by path, as ``neuron tune FILE.py:KERNEL`` does)."""
    import inspect
    fn = kernel.fn
    try:
        path = os.path.abspath(inspect.getfile(fn))
    except TypeError:                          # defined interactively: by name only
        path = ""
    return (fn.__module__, fn.__qualname__, path, kernel.lnc)


_LOADED: dict = {}


def load_kernel(ref) -> Kernel:
    """The Kernel ``kernel_ref`` names, in this process."""
    k = _LOADED.get(ref)
    if k is not None:
        return k
    import importlib
    import importlib.util
    import sys
    module, qualname, path, lnc = ref
    obj = None
    if module == "__main__":
        obj = _lookup(sys.modules.get("__main__"), qualname)
    else:
        try:
            obj = _lookup(importlib.import_module(module), qualname)
        except ImportError:                    # a module loaded from a file (neuron tune)
            obj = None
    if (obj is None or _fn(obj).__code__.co_filename != path) and os.path.isfile(path):
        spec = importlib.util.spec_from_file_location("__neuron_tune_main__", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)           # as multiprocessing's spawn does: a guarded
        obj = _lookup(mod, qualname)           # ``if __name__ == "__main__"`` block is skipped
    if obj is None:
        raise UserKernelError(f"neuron.autotune worker: cannot find kernel {qualname} in "
                              f"{path or module}")
    k = _LOADED[ref] = Kernel(_fn(obj), lnc=lnc)
    return k


def _lookup(mod, qualname):
    obj = mod
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _fn(obj):
    obj = getattr(obj, "kernel", obj)          # an Autotuner wraps the Kernel
    return getattr(obj, "fn", obj)


def _price_job(ref, config, args, kwargs, target, how):
    """Worker entry: (Price, '') or (None, error) for one config (picklable arguments;
    ``how``: 'full' or the iterations truncated pricing keeps)."""
    try:
        kernel = load_kernel(ref)
        return price(kernel, args, {**kwargs, **config}, target, how), ""
    except Exception as e:               # noqa: BLE001 - an illegal config is a result
        return None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def autotune(configs=None, *, space=None, key=(), reference=None, prune_configs_by=None,
             restore_value=(), target=None, db=None, executor=None, keep=(1, 2), confirm=2,
             full_limit=20000, full_below=FULL_BELOW):
    """Decorator: see the module doc."""
    def wrap(kernel):
        return Autotuner(kernel, configs, space, key, reference, prune_configs_by, restore_value,
                         target, db, executor, keep, confirm, full_limit, full_below)
    return wrap
