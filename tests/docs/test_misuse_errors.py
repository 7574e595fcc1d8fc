"""Plain Python / NumPy mistakes on tiles get errors that say what happened and what to write."""
import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.arch import get_arch
from device.errors import HardwareRuleError, UserKernelError


def _run(body):
    @nki.jit
    def k(a):
        t = nl.load(a)
        body(t)
        return a
    return k(np.ones((128, 8), np.float32))


def _err(body):
    with pytest.raises(UserKernelError) as e:
        _run(body)
    return str(e.value)


def test_numpy_ufunc_on_a_tile_names_the_nl_equivalent():
    msg = _err(lambda t: np.exp(t))
    assert "np.exp was applied to tile" in msg and "float32[128, 8] in sbuf" in msg
    assert "use nl.exp on tiles" in msg and "holds no values while the kernel is traced" in msg
    assert "test_misuse_errors.py" in msg                     # the user's line
    assert "access-out-of-bound" not in msg


@pytest.mark.parametrize("call, eq", [
    (lambda t: np.sum(t, axis=1), "use nl.sum on tiles"),
    (lambda t: np.abs(t), "use nl.abs on tiles"),
    (lambda t: np.maximum(t, 0), "use nl.maximum on tiles"),
    (lambda t: t * np.float32(2) if False else np.matmul(t, t), "nl.matmul or nisa.nc_matmul"),
    (lambda t: np.asarray(t), "np.asarray was applied to tile"),
    (lambda t: np.where(t, 1, 0), "use nl.where on tiles"),
])
def test_numpy_functions_on_tiles(call, eq):
    assert eq in _err(call)


def test_python_if_on_a_tile_value_explains_trace_time():
    def body(t):
        if t[0, 0] > 0:
            pass
    msg = _err(body)
    assert "`>` on a tile needs the value of tile" in msg
    assert "not known while the kernel is traced" in msg
    assert "nl.where" in msg and "affine_select" in msg and "nl.fori_loop" in msg
    assert "register_load" in msg


@pytest.mark.parametrize("call, what", [
    (lambda t: t < 1.0, "`<` on a tile"), (lambda t: t >= t, "`>=` on a tile"),
    (lambda t: float(t[0, 0]), "float(tile)"), (lambda t: int(t[0, 0]), "int(tile)"),
])
def test_other_value_uses_of_tiles(call, what):
    assert what + " needs the value of" in _err(call)


def test_sbuf_capacity_has_one_account():
    arch = get_arch("inf2")
    acct = arch.sbuf_account()
    assert acct == ("inf2 SBUF: 192 KiB per partition, of which 176 KiB (180224 bytes) are usable "
                    "by kernels and 16 KiB are reserved")

    @nki.jit
    def too_big(a):
        t = nl.ndarray((128, 180224 // 4 + 1), nl.float32, buffer=nl.sbuf)
        nisa.memset(dst=t, value=0.0)
        return a
    with pytest.raises(HardwareRuleError) as e:
        too_big(np.ones((1, 1), np.float32))
    assert "holds 180224 (" + acct + ")" in str(e.value)
