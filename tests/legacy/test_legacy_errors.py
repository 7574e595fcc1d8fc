"""Legacy layer error paths (message text and reported line) and ``nki.legacy.install()``."""
import inspect
import sys
import types

import numpy as np
import pytest

import nki
import nki.legacy as lnki
from device.errors import HardwareRuleError, UserKernelError
from nki.legacy import isa as nisa
from nki.legacy import language as nl

X = np.arange(32, dtype=np.float32).reshape(4, 8)


def _line(kernel, marker):
    lines, start = inspect.getsourcelines(kernel.fn)
    return start + next(i for i, s in enumerate(lines) if marker in s)


def _raises(kernel, marker, exc, *texts, args=(X,)):
    with pytest.raises(exc) as e:
        kernel(*args)
    for t in texts:
        assert t in str(e.value), str(e.value)
    assert e.value.loc is not None and e.value.loc.line == _line(kernel, marker)
    return e.value


def _out(x):
    return nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)


@lnki.jit
def _product_index(x):
    i_p, i_f = nl.arange(4)[:, None], nl.arange(8)[None, :]
    return nl.load(x[i_p, i_p * i_f])  # BAD


@lnki.jit
def _floordiv_index(x):
    i_p, i_f = nl.arange(4)[:, None], nl.arange(8)[None, :]
    return nl.load(x[i_p, i_f // 2])  # BAD


def test_non_affine_index_expressions_are_refused():
    _raises(_product_index, "# BAD", UserKernelError, "unsupported legacy index expression",
            "'*' of two index expressions")
    _raises(_floordiv_index, "# BAD", UserKernelError, "unsupported legacy index expression",
            "'//'")


@lnki.jit
def _or_mask(x):
    i_p, i_f = nl.arange(4)[:, None], nl.arange(8)[None, :]
    return nl.load(x[i_p, i_f], mask=(i_p < 2) | (i_f < 3))  # BAD


@lnki.jit
def _diag_mask(x):
    i_p, i_f = nl.arange(4)[:, None], nl.arange(8)[None, :]
    return nl.load(x[i_p, i_f], mask=(i_p + i_f < 5))  # BAD


@lnki.jit
def _tile_mask(x):
    t = nl.load(x)
    out = _out(x)
    nl.store(out, value=t, mask=t)  # BAD
    return out


@lnki.jit
def _not_mask(x):
    i_p = nl.arange(4)[:, None]
    return nl.load(x, mask=~(i_p < 2))  # BAD


def test_unsupported_masks_name_the_problem():
    _raises(_or_mask, "# BAD", UserKernelError, "unsupported mask: '|'")
    _raises(_diag_mask, "# BAD", UserKernelError, "unsupported mask", "involves 2 index axes")
    _raises(_tile_mask, "# BAD", UserKernelError, "unsupported mask", "comparisons of affine")
    _raises(_not_mask, "# BAD", UserKernelError, "unsupported mask: '~'")


@lnki.jit
def _oob(x):
    i_p, i_f = nl.arange(4)[:, None], nl.arange(8)[None, :]
    t = nl.load(x[i_p + 1, i_f])  # BAD
    out = _out(x)
    nl.store(out, value=t)
    return out


@lnki.jit
def _oob_masked(x):
    i_p, i_f = nl.arange(4)[:, None], nl.arange(8)[None, :]
    out = _out(x)
    nl.store(out, value=nl.zeros(x.shape, dtype=x.dtype))
    t = nl.load(x[i_p + 1, i_f], mask=(i_p < 3))
    nl.store(out[i_p, i_f], value=t, mask=(i_p < 3))
    return out


def test_out_of_bound_access_is_an_error_unless_masked():
    e = _raises(_oob, "# BAD", HardwareRuleError, "access-out-of-bound", "index range [1, 4]",
                "dimension 0 of size 4")
    assert e.rule == "access-out-of-bound"
    want = np.zeros_like(X)
    want[:3] = X[1:]
    np.testing.assert_array_equal(_oob_masked(X), want)


@lnki.jit
def _free_on_partition(x):
    t = nl.load(x)
    i_p, i_f = nl.arange(4)[:, None], nl.arange(4)[None, :]
    return nl.copy(t[i_f, i_p])  # BAD


def test_partition_axis_must_take_a_partition_index():
    _raises(_free_on_partition, "# BAD", UserKernelError, "partition axis must be indexed")


@lnki.jit
def _bad_axis(x):
    return nl.program_id(2)  # BAD


def test_grid_errors():
    _raises(_bad_axis[2, 2], "# BAD", UserKernelError, "nl.program_id(2)", "has 2 axes")
    with pytest.raises(UserKernelError, match="positive integer extents"):
        _bad_axis[0]
    with pytest.raises(AttributeError, match="not provided by the legacy emulator layer"):
        nisa.dma_compute  # noqa: B018


# ---- install() --------------------------------------------------------------------------------
@pytest.fixture
def clean_modules(monkeypatch):
    for k in [k for k in sys.modules if k == "neuronxcc" or k.startswith("neuronxcc.")]:
        monkeypatch.delitem(sys.modules, k)
    yield
    lnki.uninstall()
    for k in [k for k in sys.modules if k == "neuronxcc" or k.startswith("neuronxcc.")]:
        del sys.modules[k]


def test_install_registers_the_legacy_modules(clean_modules):
    lnki.install()
    lnki.install()                                   # twice is harmless
    import neuronxcc.nki as nk
    import neuronxcc.nki.isa as ni
    import neuronxcc.nki.language as nll
    from neuronxcc.nki.typing import tensor  # noqa: F401
    assert nk is lnki and nll is nl and ni is nisa
    ns = {}
    exec(compile("import neuronxcc.nki as nki\nimport neuronxcc.nki.language as nl\n"
                 "@nki.jit\ndef k(a):\n    o = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)\n"
                 "    nl.store(o, nl.load(a) + nl.load(a))\n    return o\n", "<legacy>", "exec"), ns)
    np.testing.assert_array_equal(nk.simulate_kernel(ns["k"], X), 2 * X)


def test_install_refuses_a_real_neuronxcc_or_the_new_api_alias(clean_modules):
    sys.modules["neuronxcc"] = types.ModuleType("neuronxcc")
    with pytest.raises(ImportError, match="a real 'neuronxcc' package"):
        lnki.install()
    del sys.modules["neuronxcc"]
    nki.install_neuronxcc_alias()
    with pytest.raises(ImportError, match="NEW-API alias"):
        lnki.install()


@lnki.jit
def _expr_block_index(x):
    buf = nl.ndarray((2, nl.par_dim(4), 8), dtype=x.dtype)
    return buf[nl.arange(2)[:, None], :, :]  # BAD


def test_block_tiles_take_integer_block_indices():
    _raises(_expr_block_index, "# BAD", UserKernelError, "supports integer block indices only")
