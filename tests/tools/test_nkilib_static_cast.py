"""The harness's ``neuron_dtypes.static_cast`` stand-in (tools/nkilib_plugin.py) packs MX x4 data
like the private package: float [P, F] -> x4 containers [P, F//4], and x4 -> float unpacks back
(the library's generate_stabilized_mx_data / dequantize_mx_golden rely on both). Checked in a
child process because importing the plugin registers module aliases."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import numpy as np, ml_dtypes
import tools.nkilib_plugin  # noqa: F401  (installs neuron_dtypes)
import neuron_dtypes as dt
from device import dtypes as D
rng = np.random.default_rng(0)
x = rng.uniform(-300, 300, (16, 12)).astype(np.float32)
q = dt.static_cast(x, dt.float8_e4m3fn_x4)
assert q.shape == (16, 3) and q.dtype == D.host_x4("float8_e4m3fn_x4"), (q.shape, q.dtype)
assert "x4" in str(q.dtype) and D.normalize(q.dtype) == "float8_e4m3fn_x4"
want = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32)
back = dt.static_cast(q, np.float32)
assert back.shape == (16, 12) and back.dtype == np.float32
np.testing.assert_array_equal(back, want)
np.testing.assert_array_equal(D.unpack_x4(q.view(np.uint32), "float8_e4m3fn_x4").reshape(16, 12), want)
np.testing.assert_array_equal(dt.static_cast(q[2:5], np.float32), want[2:5])   # slices keep the tag
f4 = dt.static_cast(np.array([[0.5, -1, 6, 0]], np.float32), dt.float4_e2m1fn_x4)
assert f4.shape == (1, 1) and f4.view(np.uint16).dtype == np.uint16
np.testing.assert_array_equal(dt.static_cast(f4, np.float32), [[0.5, -1, 6, 0]])
plain = dt.static_cast(np.array([1.0, 2.5]), ml_dtypes.bfloat16)   # other casts unchanged
assert plain.dtype == ml_dtypes.bfloat16
try:
    dt.static_cast(np.zeros((2, 6), np.float32), dt.float8_e5m2_x4)
except ValueError as e:
    assert "packs 4 values per element: the last axis must be a multiple of 4, got shape (2, 6)" in str(e), e
else:
    raise AssertionError("no error")
print("ok")
'''


def test_static_cast_packs_and_unpacks_mx_x4():
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]


PRIVATE = r'''
import numpy as np
import tools.nkilib_plugin  # noqa: F401  (installs the aliases)
import neuron_dtypes as dt
import nki.language as nl
from neuronxcc.nki._private.private_api import float8_e4m3fn_x4, float8_e5m2_x4, float4_e2m1fn_x4
from neuronxcc.nki._private.test import mx_util as a
from neuronxcc._private.test import mx_util as b
assert a is b
assert float8_e4m3fn_x4 is dt.float8_e4m3fn_x4 and float8_e5m2_x4 is dt.float8_e5m2_x4
assert float4_e2m1fn_x4 is dt.float4_e2m1fn_x4
# the library keys by one spelling and looks up the other
assert {float8_e5m2_x4: 14, float8_e4m3fn_x4: 7}[nl.float8_e4m3fn_x4] == 7
assert {nl.float8_e5m2_x4: 15}[dt.float8_e5m2_x4] == 15
try:
    a.__wrapped_never_defined__
except AttributeError:
    pass
else:
    raise AssertionError("dunder lookups must not import the checkout's test package")
try:
    a.nc_matmul_mx_golden
except ModuleNotFoundError as e:
    assert "test" in str(e), e           # no checkout on the path here: the forward names what it needs
else:
    raise AssertionError("expected the forward to need the checkout's test.utils.mx_utils")
print("ok")
'''


def test_private_mx_modules_alias_public_equivalents():
    out = subprocess.run([sys.executable, "-c", PRIVATE], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


PRIVATE_GOLDEN = r'''
import sys
sys.path.insert(0, ".")                       # the "checkout": test/utils/mx_utils.py below
import tools.nkilib_plugin  # noqa: F401
import neuron_dtypes as dt
from neuronxcc.nki._private.private_api import float8_e4m3fn_x4, float8_e5m2_x4
assert (float8_e4m3fn_x4, float8_e5m2_x4) == (dt.float8_e4m3fn_x4, dt.float8_e5m2_x4)
assert {float8_e4m3fn_x4: 7}[dt.float8_e4m3fn_x4] == 7     # the library keys dicts on one, looks up the other
from neuronxcc.nki._private.test import mx_util
import test.utils.mx_utils as own
assert mx_util.nc_matmul_mx_golden is own.nc_matmul_mx_golden
# the private helper takes the neuron_dtypes dtype; the checkout's copy keys on the nl name
got = mx_util.quantize_mx_golden("x", dt.float8_e4m3fn_x4, custom_mx_max_exp=lambda d: {float8_e4m3fn_x4: 7}[d])
assert got == ("checkout's golden", "x", "float8_e4m3fn_x4", 7), got
try:
    mx_util.no_such_golden
except AttributeError as e:
    assert "no_such_golden" in str(e), e
else:
    raise AssertionError("no error")
print("ok")
'''


def test_private_mx_test_helpers_alias_the_checkouts_goldens(tmp_path):
    """The library's newest MX references import ``neuronxcc.nki._private.private_api`` (x4 dtypes)
    and ``neuronxcc.nki._private.test.mx_util``; the plugin serves them from the neuron_dtypes
    stand-in and the checkout's own test/utils/mx_utils.py."""
    utils = tmp_path / "test" / "utils"
    utils.mkdir(parents=True)
    (tmp_path / "test" / "__init__.py").write_text("")
    (utils / "__init__.py").write_text("")
    (utils / "mx_utils.py").write_text(
        "def quantize_mx_golden(a, b, custom_mx_max_exp=None):\n"
        "    return (\"checkout's golden\", a, b, custom_mx_max_exp(b))\n"
        "def nc_matmul_mx_golden(*a):\n    return a\n")
    r = subprocess.run([sys.executable, "-c", PRIVATE_GOLDEN], cwd=tmp_path, capture_output=True, text=True,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr[-3000:]
