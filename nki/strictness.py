"""Keyword checking for the public API: an unknown keyword argument is an error, as in NKI 0.3+.

Wrappers keep a ``**_legacy`` catch-all only so that documented legacy spellings are accepted;
``strict`` turns everything else into ``TypeError: ... unexpected keyword argument``, naming the
closest valid keyword (``data1=`` on ``scalar_tensor_tensor``: "did you mean 'data'?") and the
valid ones. An explicit ``mask=None`` is accepted (it asks for nothing); a real mask was removed in
NKI 0.2 and is refused.

    >>> def f(dst, data, op0=None): pass
    >>> strict(f, "nisa.")(dst=1, data1=2)
    Traceback (most recent call last):
    TypeError: nisa.f() got an unexpected keyword argument 'data1'; did you mean 'data'? (valid: dst, data, op0)
"""
from __future__ import annotations

import difflib
import functools
import inspect

_HARMLESS = {"mask": None}          # legacy keyword -> the only value that changes nothing
_PASS_THROUGH = {"relu_param"}      # checked by the wrapper itself, with a specific message


def unknown_keyword(api: str, key: str, valid) -> TypeError:
    """``TypeError`` for an unknown keyword, suggesting the closest valid spelling."""
    valid = [v for v in valid if not v.startswith("_")]
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return TypeError(f"{api}() got an unexpected keyword argument '{key}'{hint} "
                     f"(valid: {', '.join(valid)})")


def strict(fn, prefix: str):
    params = inspect.signature(fn).parameters
    named = [n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        named_set = set(named)

        @functools.wraps(fn)
        def plain(*args, **kwargs):
            for k in kwargs:
                if k not in named_set:
                    raise unknown_keyword(f"{prefix}{fn.__name__}", k, named)
            return fn(*args, **kwargs)
        return plain

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
            raise unknown_keyword(f"{prefix}{fn.__name__}", k, named)
        return fn(*args, **kwargs)
    return wrapper


def strict_module(namespace: dict, prefix: str, module_name: str):
    """Wrap every public function defined in ``module_name`` inside ``namespace``."""
    for name, obj in list(namespace.items()):
        if (not name.startswith("_") and inspect.isfunction(obj)
                and obj.__module__ == module_name):
            namespace[name] = strict(obj, prefix)
