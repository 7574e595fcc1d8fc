"""Ways in to the tuner: neuron.jit(tune=True), .autotune() on models and imported modules,
@neuron.autotune on tile kernels, and the `neuron tune` command."""
import json

import numpy as np
import pytest

import neuron
import nki
import nki.isa as nisa
import nki.language as nl
from device.errors import UserKernelError
from neuron.cli import main
from neuron.testing import assert_close

HLO = """HloModule m

ENTRY main.1 {
  x.1 = f32[512,256]{1,0} parameter(0)
  w.1 = f32[256,1024]{1,0} parameter(1)
  dot.7 = f32[512,1024]{1,0} dot(x.1, w.1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  ROOT exp.9 = f32[512,1024]{1,0} exponential(dot.7)
}
"""


@neuron.jit(tune=True)
def tuned_model(x, w):
    return nl.tanh(nl.matmul(x, w))


@neuron.jit
def plain_model(x, w):
    return nl.tanh(nl.matmul(x, w))


def test_jit_tune_true_tunes_on_first_trace_and_computes_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_EMU_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((512, 384)).astype(np.float32)
    w = rng.standard_normal((384, 1024)).astype(np.float32) * 0.1
    got = tuned_model(x, w)
    assert_close(got, np.tanh(x @ w), rtol=1e-4, atol=1e-4)
    assert tuned_model._plans and (tmp_path / "tuning.db").exists()
    t_tuned = tuned_model.profile(x, w).total_ns
    t_plain = plain_model.profile(x, w).total_ns
    assert t_tuned <= t_plain


def test_model_autotune_returns_a_plan_and_later_traces_use_it():
    f = neuron.jit(lambda x, w: nl.matmul(x, w))
    specs = [nki.ArraySpec((2048, 1024), "bfloat16"), nki.ArraySpec((1024, 2048), "bfloat16")]
    before = f.profile(*specs, target="trn1").total_ns
    plan = f.autotune(*specs, target="trn1", db=False)
    after = f.profile(*specs, target="trn1").total_ns
    assert plan.results[0].speedup > 1.0 and after < before
    assert after == pytest.approx(plan.results[0].ns)


@nki.jit
def add_tiles(a, b, F=512):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for i in nl.affine_range(a.shape[1] // F):
        ta = nl.ndarray((a.shape[0], F), a.dtype, buffer=nl.sbuf)
        tb = nl.ndarray((a.shape[0], F), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=ta, src=a[:, i * F:(i + 1) * F])
        nisa.dma_copy(dst=tb, src=b[:, i * F:(i + 1) * F])
        nisa.tensor_tensor(dst=ta, data1=ta, data2=tb, op=nl.add)
        nisa.dma_copy(dst=out[:, i * F:(i + 1) * F], src=ta)
    return out


def test_tile_kernels_are_refused_by_model_autotune_with_advice():
    with pytest.raises(UserKernelError, match="neuron.autotune"):
        add_tiles.autotune(nki.ArraySpec((128, 2048), "float32"),
                           nki.ArraySpec((128, 2048), "float32"))


@nki.jit
def scale_tiles(a, F=512, WRONG=False):
    out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
    for i in nl.affine_range(a.shape[1] // F):
        t = nl.ndarray((a.shape[0], F), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a[:, i * F:(i + 1) * F])
        nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=3.0 if WRONG else 2.0)
        nisa.dma_copy(dst=out[:, i * F:(i + 1) * F], src=t)
    return out


def test_neuron_autotune_picks_the_fastest_config_and_verifies_it(tmp_path):
    tuned = neuron.autotune(configs=[dict(F=64), dict(F=256), dict(F=1024)],
                            reference=lambda a: a * 2, db=tmp_path / "k.db")(scale_tiles)
    a = np.ones((128, 2048), np.float32)
    out = tuned(a)
    assert_close(out, a * 2)
    report = tuned.tuning_report()
    assert tuned.best_config in (dict(F=256), dict(F=1024))
    assert "<- best" in report and "matches reference=" in report
    again = neuron.autotune(configs=[dict(F=64)], reference=lambda a: a * 2,
                            db=tmp_path / "k.db")(scale_tiles)
    sig_cfg = again.tune(a)                                  # the database answers
    assert sig_cfg == tuned.best_config


def test_a_config_that_fails_verification_is_never_the_winner():
    # WRONG=True is the cheapest candidate by construction (same program) but computes 3a
    tuned = neuron.autotune(space={"F": [1024], "WRONG": [True, False]},
                            reference=lambda a: a * 2, db=False)(scale_tiles)
    a = np.ones((128, 2048), np.float32)
    assert_close(tuned(a), a * 2)
    assert tuned.best_config == {"F": 1024, "WRONG": False}
    assert "failed: differs from reference=" in tuned.tuning_report()


def test_tuning_from_array_specs_without_data_and_pruning():
    tuned = neuron.autotune(configs=lambda a: [dict(F=f) for f in (64, 128, 256, 512)
                                               if a[1] % f == 0],
                            prune_configs_by={"perf_model": lambda F: -F, "top_k": 2},
                            db=False)(scale_tiles)
    best = tuned.tune(nki.ArraySpec((128, 1024), "float32"))
    assert best in (dict(F=256), dict(F=512))
    assert len(next(iter(tuned.results.values()))) == 2       # top_k kept two


def test_imported_module_autotune_and_cli(tmp_path, capsys):
    path = tmp_path / "m.hlo"
    path.write_text(HLO)
    f = neuron.load_hlo(path)
    plan = f.autotune(target="trn1", db=False)
    assert f.profile(target="trn1").total_ns <= sum(r.default_ns for r in plan.results) + 1
    code = main(["tune", str(path), "--target", "trn1", "--db", str(tmp_path / "c.db"),
                 "--csv", str(tmp_path / "t.csv"), "--json", str(tmp_path / "t.json"),
                 "--png", str(tmp_path / "t.png"), "--workers", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "tuned 1 group(s) for trn1" in out and "fused_matmul" in out
    assert (tmp_path / "t.csv").read_text().startswith("group,schedule")
    assert json.loads((tmp_path / "t.json").read_text())["groups"][0]["speedup"] >= 1.0
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
