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
    executor: str = "fast"  # NEURON_EMU_EXECUTOR: fast (default) | exact | reference (device.fastpath)


def settings() -> Settings:
    """Read the knobs now (cheap; environment changes take effect on the next call)."""
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
        executor=_executor(),
    )


EXECUTORS = ("fast", "exact", "reference")


def _executor() -> str:
    v = (os.environ.get("NEURON_EMU_EXECUTOR") or "fast").strip().lower()
    if v not in EXECUTORS:
        raise ValueError(f"NEURON_EMU_EXECUTOR={v!r} is not an executor; use one of "
                         f"{', '.join(EXECUTORS)}")
    return v
