"""Helpers for the importer tests: every program is generated with JAX here, imported through
both importers (HLO text and StableHLO), and compared with jax.jit on the same inputs."""
import jax
import numpy as np

import neuron
from lowering import evaluate, parse_hlo
from lowering import parse_stablehlo


def hlo_text(f, *args) -> str:
    return jax.jit(f).lower(*args).as_text(dialect="hlo")


def stablehlo_text(f, *args) -> str:
    return jax.jit(f).lower(*args).as_text()


def as_list(x):
    return list(x) if isinstance(x, (tuple, list)) else [x]


def assert_close(ours, theirs, rtol, atol):
    ours, theirs = as_list(ours), [np.asarray(t) for t in as_list(theirs)]
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        o = np.asarray(o)
        assert o.shape == t.shape, (o.shape, t.shape)
        assert o.dtype == t.dtype, (o.dtype, t.dtype)
        np.testing.assert_allclose(o.astype(np.float64), t.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True)


def check_both(f, *args, device=True, rtol=1e-5, atol=1e-5, dev_rtol=1e-4, dev_atol=1e-4):
    """Import ``f`` through both importers; compare the graph reference and (``device``) the
    emulator run against jax.jit. Returns the two ImportedFunctions."""
    theirs = jax.jit(f)(*args)
    fns = [neuron.load_hlo(hlo_text(f, *args)), neuron.load_stablehlo(stablehlo_text(f, *args))]
    for fn in fns:
        fn.graph.verify()
        assert_close(fn.reference(*args), theirs, rtol, atol)
        if device:
            assert_close(fn(*args), theirs, dev_rtol, dev_atol)
    return fns

