"""The profile report: Chrome-trace export, internal consistency, the benchmark decorator."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import nki
import nki.isa as nisa
import nki.language as nl
from device.profile import profile

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.kernels.matmul_stages import STAGES  # noqa: E402

THIS = Path(__file__).name


@nki.jit
def copy_kernel(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for i in nl.affine_range(a.shape[0] // 128):
        t = nl.ndarray((128, a.shape[1]), dtype=a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[i * 128:(i + 1) * 128, :])          # line with a load
        nisa.dma_copy(dst=out[i * 128:(i + 1) * 128, :], src=t)
    return out


@nki.jit
def one_matmul(lhsT, rhs):
    K, M = lhsT.shape
    out = nl.ndarray((M, rhs.shape[1]), dtype=nl.float32, buffer=nl.shared_hbm)
    a = nl.ndarray(lhsT.shape, dtype=lhsT.dtype, buffer=nl.sbuf)
    b = nl.ndarray(rhs.shape, dtype=rhs.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=a, src=lhsT)
    nisa.dma_copy(dst=b, src=rhs)
    acc = nl.ndarray((M, rhs.shape[1]), dtype=nl.float32, buffer=nl.psum)
    nisa.nc_matmul(dst=acc, stationary=a, moving=b)
    res = nl.ndarray(acc.shape, dtype=nl.float32, buffer=nl.sbuf)
    nisa.tensor_copy(dst=res, src=acc)
    nisa.dma_copy(dst=out, src=res)
    return out


def _spec(*shape, dtype="float32"):
    return nki.ArraySpec(shape, dtype)


def test_trace_json_is_chrome_trace_with_source_lines(tmp_path):
    r = one_matmul.profile(_spec(128, 128, dtype="bfloat16"), _spec(128, 512, dtype="bfloat16"),
                           target="trn1")
    path = r.save_trace(tmp_path / "t.json")
    doc = json.loads(Path(path).read_text())
    events = doc["traceEvents"]
    xs = [e for e in events if e["ph"] == "X" and e["cat"] != "launch"]   # + the launch overhead
    assert len(xs) == len(r.program.instrs)
    for e in events:
        assert {"ph", "ts", "pid", "tid", "name", "args"} <= set(e)
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
    for e in xs:
        assert e["dur"] >= 0 and e["ts"] >= 0 and isinstance(e["name"], str)
        assert e["args"]["source"].startswith(THIS + ":"), e
        assert e["args"]["line"] > 0
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert "TensorE (PE)" in names and "VectorE (DVE)" in names
    assert any(n.startswith("DMA queue") for n in names)
    mm = [e for e in xs if e["name"] == "nc_matmul"]
    assert len(mm) == 1 and mm[0]["cat"] == "PE"


def test_report_numbers_are_consistent():
    r = copy_kernel.profile(_spec(512, 1024), target="trn1")
    for name, s in r.engines.items():
        assert 0 <= s.busy_ns <= r.total_ns, name
        assert s.busy_ns + s.wait_ns + s.idle_ns == pytest.approx(r.total_ns), name
    moved = sum(v.size * v.itemsize for ins in r.program.instrs for v in ins.reads() + ins.writes()
                if v.storage.buffer.kind == "hbm")
    assert r.hbm_read_bytes + r.hbm_write_bytes == moved == 2 * 512 * 1024 * 4
    assert r.dma_count == 8 and r.dma_bytes == 4 * 512 * 1024 * 2
    assert sum(r.dma_histogram.values()) == 8
    d = r.to_dict()
    assert d["total_us"] == pytest.approx(r.total_ns / 1000)
    json.dumps(d)                                          # plain data


def test_pure_dma_kernel_is_dma_bound():
    r = copy_kernel.profile(_spec(1024, 2048), target="trn1")
    assert r.critical_engine == "DMA"
    assert r.bound.startswith("memory")
    assert r.matmul_count == 0 and r.mfu_pct == 0
    assert "MODELLED" in str(r)


@pytest.mark.parametrize("K,util", [(128, 100.0), (64, 50.0), (32, 25.0)])
def test_pe_utilisation_scales_with_contraction(K, util):
    r = one_matmul.profile(_spec(K, 128, dtype="bfloat16"), _spec(K, 512, dtype="bfloat16"),
                           target="trn1")
    assert r.matmul_count == 1 and r.model_flops == 2 * K * 128 * 512
    assert r.pe_utilisation_pct == pytest.approx(util)
    assert (any(w.startswith("PE under-filled") for w in r.warnings)) == (util < 50)


def test_small_dma_warning_names_the_fix():
    r = copy_kernel.profile(_spec(256, 16), target="trn1")
    assert any(w.startswith("small DMAs") and "32 KiB" in w for w in r.warnings)


def test_profile_does_not_execute_and_accepts_arrays():
    a = np.ones((256, 512), np.float32)
    r1 = copy_kernel.profile(a, target="trn1")
    r2 = copy_kernel.profile(_spec(256, 512), target="trn1")
    assert r1.total_ns == r2.total_ns and r1.kernel == "copy_kernel"
    r3 = profile(copy_kernel.trace(a, target="trn2"))
    assert r3.target == "trn2" and r3.total_ns != r1.total_ns


def test_save_png_writes_an_image(tmp_path):
    r = copy_kernel.profile(_spec(256, 512), target="trn1")
    p = r.save_png(tmp_path / "t.png")           # matplotlib is part of the test extra
    assert Path(p).read_bytes()[:4] == b"\x89PNG"


def test_save_png_without_matplotlib_says_what_to_do(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib -> ImportError
    r = copy_kernel.profile(_spec(256, 512), target="trn1")
    with pytest.raises(ImportError, match="pip install matplotlib"):
        r.save_png(tmp_path / "t.png")


def test_matmul_tutorial_stages_rank_in_published_order():
    a, b = _spec(1024, 2048, dtype="bfloat16"), _spec(1024, 2048, dtype="bfloat16")
    t = {k: f.profile(a, b, target="trn1").total_ns for k, f in STAGES.items()}
    assert t["tiled"] > t["hoist_load"] > t["block_free_dimension"] > t["fully_optimized"]


def test_benchmark_decorator_reports_modelled_latency(capsys):
    @nki.benchmark(warmup=5, iters=10)
    @nki.jit
    def k(a):
        return copy_kernel(a)

    assert k(np.ones((128, 512), np.float32)) is None
    res = k.benchmark_result
    assert res.modelled and res.nc_latency.modelled
    p99 = res.nc_latency.get_latency_percentile(99)
    assert p99 == pytest.approx(res.report.total_us) and p99 == res.nc_latency.get_latency_percentile(50)
    assert "MODELLED" in capsys.readouterr().out
    with pytest.raises(Exception, match=r"percentile must be in \[0, 100\]"):
        res.nc_latency.get_latency_percentile(101)


def test_benchmark_function_form_can_execute():
    k = nki.benchmark(copy_kernel, warmup=1, iters=2, execute=True, quiet=True)
    a = np.arange(128 * 64, dtype=np.float32).reshape(128, 64)
    np.testing.assert_array_equal(k(a), a)
    assert k.benchmark_result.nc_latency.get_latency_percentile(0) > 0
