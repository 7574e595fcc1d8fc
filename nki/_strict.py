"""Keyword checking for the public API: an unknown keyword argument is an error, as in NKI 0.3+.

Wrappers keep a ``**_legacy`` catch-all only so that documented legacy spellings are accepted;
``strict`` turns everything else into ``TypeError: ... unexpected keyword argument``. An explicit
``mask=None`` is accepted (it asks for nothing); a real mask was removed in NKI 0.2 and is refused.
"""
from __future__ import annotations

import functools
import inspect

_HARMLESS = {"mask": None}          # legacy keyword -> the only value that changes nothing
_PASS_THROUGH = {"relu_param"}      # checked by the wrapper itself, with a specific message


def strict(fn, prefix: str):
    params = inspect.signature(fn).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn
    named = {n for n, p in params.items() if p.kind is not p.VAR_KEYWORD}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for k, v in kwargs.items():
            if k in named or k in _PASS_THROUGH:
                continue
            if k in _HARMLESS and v is _HARMLESS[k]:
                continue
            if k == "mask":
                raise TypeError(f"{prefix}{fn.__name__}(): masks were removed in NKI 0.2; clip the "
                                f"slices instead (e.g. t[0:min(n, 128)])")
            raise TypeError(f"{prefix}{fn.__name__}() got an unexpected keyword argument '{k}'")
        return fn(*args, **kwargs)
    return wrapper


def strict_module(namespace: dict, prefix: str, module_name: str):
    """Wrap every public function defined in ``module_name`` inside ``namespace``."""
    for name, obj in list(namespace.items()):
        if (not name.startswith("_") and inspect.isfunction(obj)
                and obj.__module__ == module_name):
            namespace[name] = strict(obj, prefix)
