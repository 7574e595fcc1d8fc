"""Python the NKI library relies on at trace time: configuration objects and enums as kernel
arguments (part of the cache key), ``@nki.jit`` functions called from kernels, tensors and
buffers in boolean tests, dtypes as values, legacy spellings, the extra ``nki.*`` modules, and
kernel assertions that reach the caller unchanged.
"""
import enum
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl


# The library's kernel_assert, compiled outside pytest's assertion rewriting (which would append
# "assert False" to the message) so the test sees exactly what a user's kernel raises.
_ns: dict = {}
exec(compile("def kernel_assert(condition, error_text):\n    assert condition, error_text\n",
             "kernel_assert.py", "exec"), _ns)
kernel_assert = _ns["kernel_assert"]


class Act(enum.Enum):
    NONE = 0
    SCALE = 1


@dataclass(frozen=True)
class ScaleCfg(nl.NKIObject):
    factor: float = 2.0
    act: Act = Act.SCALE
    out_dtype: nki.dtype = nl.float32          # nki.dtype as an annotation (evaluated at import)

    def __post_init__(self):
        kernel_assert(self.factor != 0, "factor must be non-zero")


@dataclass
class TileCfg(nl.NKIObject):
    rows: int = 128
    extras: list = field(default_factory=list)


def _load(x, dtype=None):
    t = nl.ndarray(x.shape, dtype=dtype or x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    return t


@nki.jit
def scaled(x, cfg: ScaleCfg, tiles: TileCfg = None, bias: Optional[nl.ndarray] = None):
    t = _load(x)
    if cfg.act == Act.SCALE:
        nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=cfg.factor)
    if bias != None:                      # noqa: E711  (the library's spelling)
        b = _load(bias)
        nisa.tensor_tensor(dst=t, data1=t, data2=b, op=nl.add)
    if tiles is not None:
        nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=float(len(tiles.extras)))
    out = nl.ndarray(x.shape, dtype=cfg.out_dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_dataclass_config_and_enum_arguments_select_code_paths():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(scaled(x, ScaleCfg(3.0)), x * 3)
    np.testing.assert_array_equal(scaled(x, ScaleCfg(act=Act.NONE)), x)
    out = scaled(x, ScaleCfg(out_dtype=nl.bfloat16), bias=np.ones_like(x))
    assert str(out.dtype) == "bfloat16"
    np.testing.assert_array_equal(out.astype(np.float32), x * 2 + 1)


def test_config_values_are_part_of_the_cache_key():
    x = np.ones((2, 2), np.float32)
    scaled._cache.clear()
    scaled(x, ScaleCfg(3.0))
    scaled(x, ScaleCfg(3.0))                  # a new but equal config: no retrace
    assert len(scaled._cache) == 1
    scaled(x, ScaleCfg(4.0))
    scaled(x, ScaleCfg(4.0, Act.NONE))
    assert len(scaled._cache) == 3
    tiles = TileCfg()                         # mutable, unhashable dataclass
    np.testing.assert_array_equal(scaled(x, ScaleCfg(1.0), tiles), x)
    tiles.extras.append(5)                    # mutated between calls: must retrace, not reuse
    np.testing.assert_array_equal(scaled(x, ScaleCfg(1.0), tiles), x + 1)


def test_config_post_init_assertion_reaches_the_caller():
    with pytest.raises(AssertionError, match="^factor must be non-zero$"):
        ScaleCfg(0.0)


@nki.jit
def add_one(t):
    """A jit kernel that is also called from other kernels on SBUF tiles."""
    nisa.tensor_scalar(dst=t, data=t, op0=nl.add, operand0=1.0)
    return t


@nki.jit(mode="trace")
def twice_plus_one(x):
    t = _load(x)
    nisa.tensor_tensor(dst=t, data1=t, data2=t, op=nl.add)
    t = add_one(t)                            # inlined into this kernel's program
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    nisa.dma_copy(dst=out, src=t)
    return out


def test_jit_function_called_inside_a_kernel_is_inlined():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(twice_plus_one(x), 2 * x + 1)
    prog = twice_plus_one.trace(x)
    ops = [i.op.name for i in prog.instrs]
    assert ops == ["dma_copy", "tensor_tensor", "tensor_scalar", "dma_copy"]
    assert add_one._cache == {}               # never launched on its own


def test_tensors_compare_with_none_and_buffers_are_plain_bools():
    seen = {}

    @nki.jit
    def k(x):
        t = _load(x)
        seen["ne"] = t != None                # noqa: E711
        seen["eq"] = x == None                # noqa: E711
        seen["sbuf"] = t.buffer == nl.sbuf
        seen["hbm"] = x.buffer == nl.sbuf
        seen["shape"] = x.shape == (2, 2)
        return x

    k(np.zeros((2, 2), np.float32))
    assert seen == {"ne": True, "eq": False, "sbuf": True, "hbm": False, "shape": True}
    assert all(type(v) is bool for v in seen.values())


def test_nki_dtype_names_the_packed_mx_dtypes_like_nl():
    # The newest library MLP kernels write ``from nki.dtype import float8_e4m3fn_x4``.
    from nki.dtype import float4_e2m1fn_x4, float8_e4m3fn_x4, float8_e5m2_x4
    assert (float8_e4m3fn_x4, float8_e5m2_x4, float4_e2m1fn_x4) == (
        nl.float8_e4m3fn_x4, nl.float8_e5m2_x4, nl.float4_e2m1fn_x4)


def test_dtypes_are_hashable_and_str_stable():
    table = {nl.float32: "f32", nl.bfloat16: "bf16", nl.float8_e4m3: "fp8"}
    assert table[nki.dtype.float32] == "f32"
    assert [str(d) for d in table] == ["float32", "bfloat16", "float8_e4m3"]
    assert nl.bool == nl.bool_ and str(nl.bool) == "bool_"
    seen = {}

    @nki.jit
    def k(x, compute_dtype: nki.dtype = nl.bfloat16):
        seen[compute_dtype] = str(x.dtype)
        t = _load(x, compute_dtype)
        out = nl.ndarray(x.shape, dtype=compute_dtype, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=t)
        return out

    assert k(np.ones((2, 2), np.float32)).dtype.name == "bfloat16"
    assert k(np.ones((2, 2), np.float32), nl.float16).dtype == np.float16
    assert seen == {"bfloat16": "float32", "float16": "float32"}
    assert len(k._cache) == 2                 # the dtype argument is part of the cache key


def test_legacy_spellings(tmp_path):
    const = np.arange(8, dtype=np.float32).reshape(2, 4)
    path = tmp_path / "c.npy"
    np.save(path, const)

    @nki.jit(mode="auto", debug_kernel=True, show_compiler_tb=True, experimental_flags="x")
    def k(x):
        assert nl.tile_size.psum_fmax == 512
        assert nl.tile_size.total_available_sbuf_size == nl.tile_size.sbuf_fmax_bytes
        c = nl.shared_constant(str(path))
        t = _load(x)
        ct = _load(c)
        for _ in nl.dynamic_range(2):
            nisa.tensor_tensor(dst=t, data1=t, data2=ct, op=nl.add, engine=nisa.vector_engine)
        m = nl.ndarray(x.shape, dtype=nl.bool, buffer=nl.sbuf)
        nisa.tensor_scalar(dst=m, data=t, op0=nl.greater, operand0=5.0)
        m2 = nl.ndarray(x.shape, dtype=nl.uint8, buffer=nl.sbuf)
        nisa.tensor_copy(dst=m2, src=m, engine=nisa.gpsimd_engine)
        out = nl.ndarray(x.shape, dtype=nl.uint8, buffer=nl.shared_hbm)
        nisa.dma_copy(dst=out, src=m2)
        return out

    x = np.ones((2, 4), np.float32)
    with pytest.warns(DeprecationWarning, match="dynamic_range"):
        out = k(x)
    np.testing.assert_array_equal(out, (x + 2 * const > 5).astype(np.uint8))


def test_kernel_assert_message_reaches_the_caller_unchanged():
    msg = ("[INTERNAL_ERROR] [NCC_INKI016] Kernel validation exception: seq len must be a "
           "multiple of 128, got 100 - Please check the validation message")

    @nki.jit
    def k(x):
        kernel_assert(x.shape[0] % 128 == 0, msg.replace("100", str(x.shape[0])))
        return x

    with pytest.raises(AssertionError) as e:
        k(np.zeros((100, 2), np.float32))
    assert str(e.value) == msg
    assert e.type is AssertionError


def test_extra_nki_modules_exist():
    import nki.compiler
    import nki.isa.constants as c
    import nki.tensor

    assert c.oob_mode is nisa.oob_mode and c.dge_mode.swdge == nisa.dge_mode.swdge
    assert c.nc_version.gen3 >= c.nc_version.gen2
    assert nki.compiler.skip_middle_end_transformations(len) is len
    assert nki.collectives.ReplicaGroup([[0, 1]]) == nki.collectives.ReplicaGroup([(0, 1)])
    seen = []

    @nki.jit
    def k(x):
        seen.append(isinstance(x, nki.tensor.NkiTensor))
        return x

    k(np.zeros((1, 1), np.float32))
    assert seen == [True]
    with pytest.raises(Exception, match="can only be called inside a kernel"):
        nki.collectives.all_reduce(srcs=[], dsts=[], replica_group=[[0, 1]], op=nl.add)
