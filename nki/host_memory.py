"""Giving the emulator's freed buffers back to the operating system after a large kernel run.

glibc keeps freed heap pages for reuse, and it raises its mmap threshold after each large free, so
the next large buffers come from the heap too: after one kernel over a few hundred MB the process
keeps its peak size although nothing references the buffers. Under ``ulimit -v`` (how the
nki-library runner is used on a shared machine) the next kernel then fails to allocate even
small arrays. ``malloc_trim`` returns those pages; it is only called after a run that moved at
least ``TRIM_ABOVE`` bytes, where its cost (a walk of the heap, well under a millisecond here)
is negligible next to the run.

    >>> release_freed_memory(0)
    False
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

TRIM_ABOVE = 64 << 20           # bytes moved by a run before freed pages are handed back

_trim = None                    # None: not looked up yet; False: unavailable (not glibc)


def _malloc_trim():
    global _trim
    if _trim is None:
        _trim = False
        if sys.platform.startswith("linux"):
            try:
                _trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
            except (OSError, AttributeError):      # musl and others have no malloc_trim
                _trim = False
    return _trim or None


def release_freed_memory(nbytes: int) -> bool:
    """After a run that moved ``nbytes`` of host arrays: return freed heap pages to the OS.
    Returns whether a trim ran (glibc only; small runs skip it)."""
    if nbytes < TRIM_ABOVE:
        return False
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
