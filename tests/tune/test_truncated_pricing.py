"""Truncated pricing of tile kernels (nki.loopcut + neuron.truncated), the kernel autotuner's
successive halving, kernels found by path in workers, and the warm model-autotune path."""
import doctest
import importlib
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import neuron
import nki
import nki.isa as nisa
import nki.language as nl
from benchmarks.kernels.matmul_stages import nki_matmul_fully_optimized_ as blocked_matmul
from device.errors import UserKernelError
from neuron.autotune import kernel_ref, load_kernel
from neuron.truncated import price_full, price_truncated
from nki.loopcut import LoopCut
from nki.tracing import Kernel


@pytest.mark.parametrize("name", ["nki.loopcut", "neuron.truncated"])
def test_module_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result


@nki.jit
def scaled_copy(a, F=128):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for i in nl.affine_range(a.shape[0] // 128):
        for j in nl.sequential_range(a.shape[1] // F):
            t = nl.ndarray((128, F), a.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=a[i * 128:(i + 1) * 128, j * F:(j + 1) * F])
            nisa.activation(dst=t, op=nl.exp, data=t)
            nisa.dma_copy(dst=out[i * 128:(i + 1) * 128, j * F:(j + 1) * F], src=t)
    return out


@given(kb=st.integers(1, 6), m=st.integers(1, 3), n=st.integers(1, 6),
       tiles=st.sampled_from([(2, 1, 2), (1, 2, 1), (2, 2, 2)]),
       keep=st.sampled_from([1, 2, (1, 2)]))
@settings(max_examples=10, deadline=None)
def test_truncated_price_matches_the_full_price_of_a_steady_loop_nest(kb, m, n, tiles, keep):
    tm, tn, tk = tiles
    specs = [nki.ArraySpec((128 * tk * kb, 128 * tm * m), "bfloat16"),
             nki.ArraySpec((128 * tk * kb, 512 * tn * n), "bfloat16")]
    cfg = dict(TILES_M=tm, TILES_N=tn, TILES_K=tk)
    fast = price_truncated(blocked_matmul, specs, cfg, "trn1", keep=keep, full_below=0)
    full = price_full(blocked_matmul, specs, cfg, "trn1")
    assert fast.instructions == pytest.approx(full.instructions)
    assert fast.ns == pytest.approx(full.ns, rel=1e-3)
    if n > 3:                        # the outer loop was cut: fewer instructions traced
        assert fast.traced < full.traced and fast.how.startswith("truncated")


def test_small_programs_and_short_loops_are_priced_in_full():
    spec = nki.ArraySpec((128 * 8, 128 * 8), "float32")          # 192 instructions
    assert price_truncated(scaled_copy, [spec], {}, "trn1", keep=1).how == "full"
    spec = nki.ArraySpec((128 * 2, 128 * 2), "float32")          # no loop longer than 2
    fast = price_truncated(scaled_copy, [spec], {}, "trn1", keep=1, full_below=0)
    assert fast.how == "full" and fast.ns == price_full(scaled_copy, [spec], {}, "trn1").ns


def test_loop_sites_are_the_outer_loop_and_one_loop_inside_it():
    cut = LoopCut(keep=1)
    with cut:
        prog = Kernel(scaled_copy.fn).trace(nki.ArraySpec((1024, 1024), "float32"))
    first = scaled_copy.fn.__code__.co_firstlineno
    assert [line - first for _, line in cut.sites] == [3, 4] and cut.full_trips() == (8, 8)
    assert len(prog.instrs) == 2 * 2 * 3
    assert len(cut.program(prog, (1, 1)).instrs) == 3
    assert len(cut.program(prog, (2, 1)).instrs) == 6


@nki.jit
def builds_rows_then_uses_them(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for n in nl.affine_range(a.shape[1] // 128):
        rows = []
        for t in nl.affine_range(a.shape[0] // 128):     # cutting this one breaks the kernel
            r = nl.ndarray((128, 128), a.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=r, src=a[t * 128:(t + 1) * 128, n * 128:(n + 1) * 128])
            rows.append(r)
        for t in nl.sequential_range(a.shape[0] // 128):
            nisa.dma_copy(dst=out[t * 128:(t + 1) * 128, n * 128:(n + 1) * 128], src=rows[t])
    return out


def test_a_loop_whose_cut_breaks_the_kernel_is_left_whole():
    spec = nki.ArraySpec((128 * 6, 128 * 5), "float32")
    fast = price_truncated(builds_rows_then_uses_them, [spec], {}, "trn1", keep=1,
                           full_below=0)
    full = price_full(builds_rows_then_uses_them, [spec], {}, "trn1")
    assert fast.how.startswith("truncated") and "x6" not in fast.how.split(",")[0]
    assert fast.ns == pytest.approx(full.ns, rel=2e-3)


@nki.jit
def triangular(a):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for i in nl.affine_range(a.shape[0] // 128):
        for j in nl.affine_range(i + 1):                 # trip count varies: no extrapolation
            t = nl.ndarray((128, 128), a.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=a[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128])
            nisa.dma_copy(dst=out[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128], src=t)
    return out


def test_a_cut_loop_with_varying_trip_counts_is_priced_in_full():
    spec = nki.ArraySpec((128 * 6, 128 * 6), "float32")
    fast = price_truncated(triangular, [spec], {}, "trn1", keep=1, full_below=0)
    assert fast.how == "full"
    assert fast.ns == price_full(triangular, [spec], {}, "trn1").ns


def test_loopcut_refuses_bad_keeps_and_nesting():
    with pytest.raises(ValueError, match="at least one iteration"):
        LoopCut(keep=0)
    with pytest.raises(ValueError, match="at least one iteration"):
        LoopCut(keep=(1, 2, 3))
    with LoopCut():
        with pytest.raises(RuntimeError, match="do not nest"):
            with LoopCut():
                pass


def test_blocked_matmul_tuned_by_successive_halving_matches_full_pricing():
    specs = [nki.ArraySpec((1024, 512), "bfloat16"), nki.ArraySpec((1024, 2048), "bfloat16")]
    space = {"TILES_M": [2, 4], "TILES_N": [1, 2], "TILES_K": [2, 4]}
    tuned = neuron.autotune(space=space, db=False, confirm=2, full_limit=10 ** 6,
                            full_below=0)(blocked_matmul)
    best = tuned.tune(*specs, target="trn1")
    results = next(iter(tuned.results.values()))
    full = {tuple(sorted(r.config.items())): price_full(blocked_matmul, specs, r.config,
                                                           "trn1").ns for r in results}
    assert full[tuple(sorted(best.items()))] == min(full.values())
    ranked = sorted(results, key=lambda r: r.ns)
    assert all(r.how == "full" for r in ranked[:2])                # the confirmed two
    assert any(r.how.startswith("truncated") for r in ranked[2:])
    for r in results:
        assert r.ns == pytest.approx(full[tuple(sorted(r.config.items()))], rel=2e-3)
        assert r.how == "full" or r.how.startswith("truncated keep=1,2")
    assert "truncated keep=1,2" in tuned.tuning_report()


def test_a_failing_config_is_reported_not_fatal():
    specs = [nki.ArraySpec((1024, 512), "bfloat16"), nki.ArraySpec((1024, 2048), "bfloat16")]
    tuned = neuron.autotune(configs=[dict(TILES_M=3), dict(TILES_M=2)], db=False)(blocked_matmul)
    assert tuned.tune(*specs, target="trn1") == dict(TILES_M=2)
    assert "AssertionError" in tuned.tuning_report()


SCRIPT = textwrap.dedent('''
    import nki, nki.language as nl, nki.isa as nisa
    import neuron

    @neuron.autotune(configs=[dict(F=128)], db=False)
    @nki.jit
    def double(a, F=128):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        for i in nl.affine_range(a.shape[1] // F):
            t = nl.ndarray((128, F), a.dtype, buffer=nl.sbuf)
            nisa.dma_copy(dst=t, src=a[:, i * F:(i + 1) * F])
            nisa.dma_copy(dst=out[:, i * F:(i + 1) * F], src=t)
        return out

    if __name__ == "__main__":
        raise SystemExit("the guarded block must not run in a worker")
''')


def test_a_kernel_from_a_script_run_as_main_is_found_by_its_path(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    ref = ("__main__", "double", str(path), 1)             # what kernel_ref gives in a script
    k = load_kernel(ref)
    assert isinstance(k, Kernel) and k.fn.__name__ == "double"
    assert load_kernel(ref) is k                           # loaded once per process
    assert k.trace(nki.ArraySpec((128, 512), "float32"), target="trn1").instrs
    module, name, where, lnc = kernel_ref(blocked_matmul)
    assert (module, name, lnc) == (blocked_matmul.fn.__module__, "nki_matmul_fully_optimized_", 1)
    assert where.endswith("matmul_stages.py")
    assert load_kernel(("no_such_module_xyz", "double", str(path), 1)).fn.__name__ == "double"
    with pytest.raises(UserKernelError, match="cannot find kernel nope"):
        load_kernel(("__main__", "nope", str(path), 1))


def test_warm_model_autotune_does_not_lower_the_model(tmp_path, monkeypatch):
    specs = [nki.ArraySpec((512, 256), "bfloat16"), nki.ArraySpec((256, 1024), "bfloat16")]
    first = neuron.jit(lambda x, w: nl.matmul(x, w)).autotune(*specs, target="trn1",
                                                                db=tmp_path / "t.db")
    import nki.whole_tensor as wt

    def no_lowering(*a, **k):
        raise AssertionError("a warm autotune lowered the model")
    monkeypatch.setattr(wt, "lower_op", no_lowering)
    f = neuron.jit(lambda x, w: nl.matmul(x, w))
    again = f.autotune(*specs, target="trn1", db=tmp_path / "t.db")
    assert all(r.cache_hit for r in again.results)
    assert again.schedules == first.schedules
    monkeypatch.undo()
    x = np.ones((512, 256), np.float32)
    w = np.ones((256, 1024), np.float32)
    assert np.allclose(np.asarray(f(x, w), np.float32), 256)        # and it still computes


def test_neuron_tune_cli_tunes_an_autotuned_tile_kernel_in_spawned_workers(tmp_path, capsys):
    from neuron.cli import main
    path = tmp_path / "kern.py"
    path.write_text(SCRIPT.replace("configs=[dict(F=128)]",
                                   "configs=[dict(F=128), dict(F=256), dict(F=512)]"))
    code = main(["tune", f"{path}:double", "128x2048:float32", "--target", "trn1",
                 "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "<- best" in out
    assert out.count("us  {'F'") == 3 and "failed" not in out
