"""All user knobs in one place, read from the environment names NKI users already know.

    >>> from device.settings import settings
    >>> settings().target            # NEURON_PLATFORM_TARGET_OVERRIDE, default 'inf2'
    'inf2'
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _flag(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    return v.strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    target: str            # NEURON_PLATFORM_TARGET_OVERRIDE, else NKI_NC_VERSION: trn1/inf2/gen2, trn2/gen3, trn3/gen4
    precise_fp: bool       # NKI_PRECISE_FP (default 1): low-precision dtypes rounded like hardware
    simulator: bool        # NKI_SIMULATOR: accepted for compatibility; the emulator is always used
    debug_verify: bool     # NEURON_EMU_DEBUG: run the verifier after every pass
    warn_uninit: bool      # NEURON_EMU_WARN_UNINIT (default 1): warn on reads of unwritten memory
    cache_dir: Path        # NEURON_EMU_CACHE_DIR, default ~/.cache/neuron-emu
    # Resource budgets (device/limits.py checks them before the work they bound starts):
    host_memory_bytes: int     # NEURON_EMU_HOST_MEMORY: host RAM one emulation may allocate (4G)
    max_instructions: int      # NEURON_EMU_MAX_INSTRUCTIONS: instructions per device program (500k)
    max_unroll: int            # NEURON_EMU_MAX_UNROLL: trips of one trace-time loop (1M)
    max_loop_trips: int        # NEURON_EMU_MAX_LOOP_TRIPS: trips of one device/graph while loop (1M)
    loop_seconds: float        # NEURON_EMU_LOOP_SECONDS: wall time of one while loop (300 s)
    max_constant_elements: int  # NEURON_EMU_MAX_CONSTANT_ELEMENTS: one imported literal/splat (64M)
    legacy_report: bool    # NEURON_EMU_LEGACY_REPORT: legacy kernels list constructs to port
    executor: str = "fast"  # NEURON_EMU_EXECUTOR: fast (default) | exact | reference (device.fastpath)
    parse_seconds: float = 60.0  # NEURON_EMU_PARSE_SECONDS: jaxlib's parse of untrusted StableHLO
    fill: str = "sentinel"  # NEURON_EMU_FILL: what a new on-chip tensor holds: sentinel (NaN /
                            # 4, default: uninitialised reads show) | zero (as the NKI library's
                            # simulator, whose tests expect unwritten padding to read 0)


_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _count(name: str, default: int) -> int:
    """A positive integer knob; byte sizes may end in K/M/G/T (binary): ``NEURON_EMU_HOST_MEMORY=16G``."""
    v = (os.environ.get(name) or "").strip().upper().removesuffix("B").removesuffix("I")
    if not v:
        return default
    unit = v[-1] if v[-1] in "KMGT" else ""
    try:
        n = int(float(v[:-1] if unit else v) * _SUFFIX[unit])
    except ValueError:
        raise ValueError(f"{name}={os.environ.get(name)!r} is not a number (e.g. 1000000 or 16G)") \
            from None
    if n <= 0:
        raise ValueError(f"{name}={os.environ.get(name)!r} must be positive")
    return n


# every environment name settings() reads (HOME through expanduser); a test keeps it complete
ENV_NAMES = ("NEURON_EMU_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "NEURON_PLATFORM_TARGET_OVERRIDE",
             "NKI_NC_VERSION", "NKI_PRECISE_FP", "NKI_SIMULATOR", "NEURON_EMU_DEBUG",
             "NEURON_EMU_WARN_UNINIT", "NEURON_EMU_HOST_MEMORY", "NEURON_EMU_MAX_INSTRUCTIONS",
             "NEURON_EMU_MAX_UNROLL", "NEURON_EMU_MAX_LOOP_TRIPS", "NEURON_EMU_LOOP_SECONDS",
             "NEURON_EMU_MAX_CONSTANT_ELEMENTS", "NEURON_EMU_LEGACY_REPORT", "NEURON_EMU_EXECUTOR",
             "NEURON_EMU_PARSE_SECONDS", "NEURON_EMU_FILL")
_last: tuple | None = None       # (the values of ENV_NAMES, the Settings parsed from them)


def settings() -> Settings:
    """Read the knobs now (environment changes take effect on the next call). Parsing is
    skipped while the variables it reads are unchanged: every emulator call asks, twice."""
    global _last
    key = tuple(map(os.environ.get, ENV_NAMES))
    last = _last
    if last is not None and last[0] == key:
        return last[1]
    s = _parse()
    _last = (key, s)
    return s


def _parse() -> Settings:
    cache = os.environ.get("NEURON_EMU_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "neuron-emu")
    return Settings(
        target=(os.environ.get("NEURON_PLATFORM_TARGET_OVERRIDE")
                or os.environ.get("NKI_NC_VERSION") or "inf2"),
        precise_fp=_flag("NKI_PRECISE_FP", True),
        simulator=_flag("NKI_SIMULATOR", False),
        debug_verify=_flag("NEURON_EMU_DEBUG", False),
        warn_uninit=_flag("NEURON_EMU_WARN_UNINIT", True),
        cache_dir=Path(cache),
        host_memory_bytes=_count("NEURON_EMU_HOST_MEMORY", 4 << 30),
        max_instructions=_count("NEURON_EMU_MAX_INSTRUCTIONS", 500_000),
        max_unroll=_count("NEURON_EMU_MAX_UNROLL", 1_000_000),
        max_loop_trips=_count("NEURON_EMU_MAX_LOOP_TRIPS", 1_000_000),
        loop_seconds=float(_count("NEURON_EMU_LOOP_SECONDS", 300)),
        max_constant_elements=_count("NEURON_EMU_MAX_CONSTANT_ELEMENTS", 64 << 20),
        legacy_report=_flag("NEURON_EMU_LEGACY_REPORT", False),
        executor=_executor(),
        parse_seconds=float(_count("NEURON_EMU_PARSE_SECONDS", 60)),
        fill=_fill(),
    )


EXECUTORS = ("fast", "exact", "reference")


def _executor() -> str:
    v = (os.environ.get("NEURON_EMU_EXECUTOR") or "fast").strip().lower()
    if v not in EXECUTORS:
        raise ValueError(f"NEURON_EMU_EXECUTOR={v!r} is not an executor; use one of "
                         f"{', '.join(EXECUTORS)}")
    return v


FILLS = ("sentinel", "zero")


def _fill() -> str:
    v = (os.environ.get("NEURON_EMU_FILL") or "sentinel").strip().lower()
    if v not in FILLS:
        raise ValueError(f"NEURON_EMU_FILL={v!r} is not a fill; use one of {', '.join(FILLS)}")
    return v
