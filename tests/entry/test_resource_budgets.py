"""Oversize requests are refused before the work or the allocation, through every entry point.

Each test runs under tracemalloc (NumPy reports its buffers to it) and asserts that the peak stays
far below what the request would need, and that the error names the limit and how to raise it.
"""
from __future__ import annotations

import pathlib
import time
import tracemalloc

import numpy as np
import pytest

import neuron
import nki
import nki.language as nl
from device.limits import ResourceLimitError
from device.settings import settings

SMALL = 64 << 20          # 64 MiB: every refusal below must stay under this


class peak_memory:
    """``with peak_memory() as p: ...`` then ``p.peak`` is the traced peak in bytes."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return False


BIG_BROADCAST = """HloModule big
ENTRY e {
  p = f32[] parameter(0)
  ROOT b = f32[40000,40000] broadcast(p), dimensions={}
}
"""
HUGE_BROADCAST = BIG_BROADCAST.replace("40000,40000", "131072,131072")


@nki.jit
def _huge_output(a):
    out = nl.ndarray((128, 2**31), a.dtype, buffer=nl.shared_hbm)
    return out


def _copy_body(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    nl.store(out, nl.load(a))
    return out


def test_kernel_hbm_capacity_refused_at_allocation():
    with peak_memory() as p, pytest.raises(ResourceLimitError, match=r"hbm-capacity: HBM tensor .* "
                                           r"needs 1099511627776 bytes \(1.0 TiB\).*16.0 GiB") as e:
        _huge_output(np.zeros((1, 1), np.float32))
    assert p.peak < SMALL
    assert "test_resource_budgets.py" in str(e.value)          # the user's line


def test_kernel_profile_with_array_spec_refused_before_tracing_work():
    k = nki.jit(_copy_body)
    with peak_memory() as p, pytest.raises(ResourceLimitError, match="hbm-capacity"):
        k.profile(nki.ArraySpec((128, 2**33), "float32"))
    assert p.peak < SMALL


def test_kernel_host_memory_budget(monkeypatch):
    monkeypatch.setenv("NEURON_EMU_HOST_MEMORY", "1M")
    x = np.ones((128, 4096), np.float32)                      # 2 MiB: fits HBM, not the budget
    k = nki.jit(_copy_body)
    with peak_memory() as p, pytest.raises(ResourceLimitError,
                                           match="host-memory.*raise it with NEURON_EMU_HOST_MEMORY"):
        k(x)
    assert p.peak < x.nbytes                                  # refused before binding the input
    monkeypatch.setenv("NEURON_EMU_HOST_MEMORY", "64M")
    np.testing.assert_array_equal(k(x), x)


def test_load_hlo_call_refused_before_lowering():
    f = neuron.load_hlo(BIG_BROADCAST)
    t = time.perf_counter()
    with peak_memory() as p, pytest.raises(ResourceLimitError, match="host-memory"):
        f(np.float32(1))
    assert p.peak < SMALL and time.perf_counter() - t < 5
    assert not f._programs                                    # nothing was lowered


def test_load_hlo_profile_refused_by_hbm_capacity():
    f = neuron.load_hlo(HUGE_BROADCAST)
    with peak_memory() as p, pytest.raises(ResourceLimitError, match="hbm-capacity"):
        f.profile(np.float32(1))
    assert p.peak < SMALL


def test_load_stablehlo_call_refused_before_lowering():
    text = """module @big {
  func.func public @main(%arg0: tensor<f32>) -> tensor<40000x40000xf32> {
    %0 = stablehlo.broadcast_in_dim %arg0, dims = [] : (tensor<f32>) -> tensor<40000x40000xf32>
    return %0 : tensor<40000x40000xf32>
  }
}"""
    f = neuron.load_stablehlo(text)
    with peak_memory() as p, pytest.raises(ResourceLimitError, match="host-memory"):
        f(np.float32(1))
    assert p.peak < SMALL


def test_from_jax_refused_before_allocation():
    import jax.numpy as jnp
    g = neuron.from_jax(lambda x: jnp.zeros((100000, 100000), jnp.float32) + x)
    with peak_memory() as p, pytest.raises(ResourceLimitError, match="hbm-capacity"):
        g(np.float32(1))
    assert p.peak < SMALL


def test_cli_import_and_profile_refuse_briefly(tmp_path, capsys):
    from neuron.cli import main
    hlo = tmp_path / "big.hlo"
    hlo.write_text(BIG_BROADCAST)
    with peak_memory() as p:
        assert main(["import", str(hlo)]) == 1
    assert "host-memory" in capsys.readouterr().err and p.peak < SMALL
    src = tmp_path / "k.py"
    src.write_text("import nki.language as nl\n\ndef k(a):\n    out = nl.ndarray(a.shape, a.dtype, "
                   "buffer=nl.shared_hbm)\n    nl.store(out, nl.load(a))\n    return out\n")
    with peak_memory() as p:
        assert main(["profile", f"{src}:k", "128x8589934592:float32"]) == 1
    assert "hbm-capacity" in capsys.readouterr().err and p.peak < SMALL


def test_affine_range_unroll_bound_checked_before_the_first_iteration():
    @nki.jit
    def k(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        for i in nl.affine_range(10**9):
            nl.store(out, nl.load(a))
        return out
    t = time.perf_counter()
    with pytest.raises(ResourceLimitError, match=r"unroll: affine_range\(0, 1000000000, 1\) has "
                       r"1000000000 iterations.*NEURON_EMU_MAX_UNROLL"):
        k(np.zeros((2, 2), np.float32))
    assert time.perf_counter() - t < 2


def test_instruction_budget(monkeypatch):
    monkeypatch.setenv("NEURON_EMU_MAX_INSTRUCTIONS", "50")

    @nki.jit
    def k(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        for i in range(100):
            nl.store(out, nl.load(a))
        return out
    with pytest.raises(ResourceLimitError, match="instructions: program k reached 50 instructions"
                       ".*NEURON_EMU_MAX_INSTRUCTIONS") as e:
        k(np.zeros((2, 2), np.float32))
    assert "test_resource_budgets.py" in str(e.value)


def test_device_while_loop_with_constant_true_condition_stops(monkeypatch):
    import nki.isa as nisa
    monkeypatch.setenv("NEURON_EMU_MAX_LOOP_TRIPS", "1000")

    @nki.jit
    def k(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray(a.shape, a.dtype, buffer=nl.sbuf)

        def forever(r):                  # the condition register never changes: a runaway loop
            nisa.dma_copy(dst=t, src=a)
            return r
        nl.while_loop(1, forever)
        nisa.dma_copy(dst=out, src=t)
        return out
    t = time.perf_counter()
    with pytest.raises(ResourceLimitError, match="loop-trips: while_loop ran 1000 iterations"):
        k(np.zeros((2, 2), np.float32))
    assert time.perf_counter() - t < 30


def test_budget_knobs_parse_sizes(monkeypatch):
    monkeypatch.setenv("NEURON_EMU_HOST_MEMORY", "16G")
    assert settings().host_memory_bytes == 16 << 30
    monkeypatch.setenv("NEURON_EMU_HOST_MEMORY", "lots")
    with pytest.raises(ValueError, match="NEURON_EMU_HOST_MEMORY='lots' is not a number"):
        settings()
    monkeypatch.setenv("NEURON_EMU_HOST_MEMORY", "0")
    with pytest.raises(ValueError, match="must be positive"):
        settings()


def test_hbm_capacity_per_target_is_documented():
    from device.arch import get_arch
    assert get_arch("trn1").hbm_bytes_per_core == 16 << 30
    assert get_arch("trn2").hbm_bytes_per_core == 12 << 30
    assert get_arch("trn3").hbm_bytes_per_core == 18 << 30


def test_paths_are_not_text(tmp_path):
    hlo = tmp_path / "m.hlo"
    hlo.write_text("HloModule m\nENTRY e {\n  ROOT p = f32[2] parameter(0)\n}\n")
    assert neuron.load_hlo(pathlib.Path(hlo))(np.ones(2, np.float32)).tolist() == [1, 1]
    assert neuron.load_hlo(path=str(hlo))(np.ones(2, np.float32)).tolist() == [1, 1]
    from lowering import HloImportError
    with pytest.raises(HloImportError, match="a str is read as HLO text, never as a file name"):
        neuron.load_hlo(str(hlo))
    with pytest.raises(HloImportError, match="cannot read .*missing.hlo.*No such file"):
        neuron.load_hlo(tmp_path / "missing.hlo")
    with pytest.raises(TypeError, match="one of them"):
        neuron.load_hlo("HloModule m", path=str(hlo))


def test_stablehlo_paths_are_not_text(tmp_path):
    from lowering import StableHloImportError
    m = tmp_path / "m.mlir"
    m.write_text("func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  return %a : tensor<2xf32>\n}\n")
    assert neuron.load_stablehlo(m)(np.ones(2, np.float32)).tolist() == [1, 1]
    with pytest.raises(StableHloImportError, match="never as a file name"):
        neuron.load_stablehlo(str(m))
    b = tmp_path / "bad.mlir"
    b.write_bytes(b"\xff\xfe junk")
    with pytest.raises(StableHloImportError, match="neither MLIR text nor a StableHLO bytecode"):
        neuron.load_stablehlo(path=b)
