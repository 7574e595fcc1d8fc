"""Run the ``>>>`` examples of an ``nl`` / ``nisa`` docstring inside a kernel on the emulator.

The examples use the ready tiles of ``nki.docs.FIXTURES`` (``a``, ``b``, ``out``, ``ps``, ...);
``run_examples`` allocates them in a kernel body, runs the examples there with doctest, executes
the traced program and raises ``ExampleFailure`` with doctest's report if anything failed:

    >>> import nki.isa as nisa
    >>> run_examples(nisa.tensor_tensor, "nisa.tensor_tensor")
"""
from __future__ import annotations

import doctest
import inspect

import numpy as np

from .docs import FIXTURES


class ExampleFailure(AssertionError):
    """A docstring example did not run as written."""


def _inputs():
    rng = np.random.default_rng(0)
    out = {}
    import ml_dtypes
    for k, (shape, dt, buf, filled) in FIXTURES.items():
        if filled:
            if dt == "int32":
                out[k] = rng.integers(0, 1000, shape).astype(np.int32)
            else:
                v = rng.uniform(0.5, 1.5, shape).astype(np.float32)
                out[k] = v.astype(ml_dtypes.bfloat16) if dt == "bfloat16" else v
    return out


def run_examples(obj, name: str = "", target: str | None = None, lnc: int = 1):
    """Trace and run the ``>>>`` examples of ``obj.__doc__`` in a kernel body with ``FIXTURES``.

    Raises ``ExampleFailure`` with doctest's report when an example fails or raises.
    """
    import nki
    import nki.isa as nisa
    import nki.language as nl
    from nki.tracing import Kernel
    test = doctest.DocTestParser().get_doctest(obj.__doc__ or "", {}, name or repr(obj),
                                                "<docstring>", 0)
    if not test.examples:
        raise ExampleFailure(f"{name}: the docstring has no >>> example")
    report = []

    def body(**arrays):
        ns = {"np": np, "nl": nl, "nisa": nisa, "nki": nki}
        for k, (shape, dt, buf, filled) in FIXTURES.items():
            if buf == "hbm":
                ns[k] = arrays[k]
            elif buf == "shared_hbm":
                ns[k] = nl.ndarray(shape, dt, buffer=nl.shared_hbm, name=k)
            else:
                t = nl.ndarray(shape, dt, buffer=getattr(nl, buf), name=k)
                if filled:
                    nisa.dma_copy(dst=t, src=arrays[k])
                ns[k] = t
        test.globs = ns
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        runner.run(test, out=report.append, clear_globs=False)

    params = [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD)
              for k in _inputs()]
    body.__signature__ = inspect.Signature(params)
    body.__name__ = f"example_{(name or 'x').replace('.', '_')}"
    Kernel(body, lnc=lnc, target=target)(**_inputs())
    if report:
        raise ExampleFailure("".join(report))
