"""The autotuner: deterministic under any executor, cached, verified, never slower than the
default, and every tuned program computes the graph."""
import concurrent.futures as cf
import multiprocessing
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from device.executor import run
from lowering import Graph, TensorType, broadcast_binary, evaluate, lower_graph, plan
from lowering.lower import MatmulSchedule
from lowering.tune import TuningDB, TuningDBWarning, tune
from lowering.tune import tuner as tuner_mod
from lowering.tune.verify import Verdict
from neuron.testing import assert_close

ROOT = Path(__file__).resolve().parents[2]


def mlp(M=256, K=384, N=640, dt="bfloat16"):
    g = Graph("mlp")
    x = g.param(TensorType((M, K), dt), "x")
    w = g.param(TensorType((K, N), dt), "w")
    b = g.param(TensorType((N,), dt), "b")
    y = g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})
    h = g.add_op("tanh", [broadcast_binary(g, "add", y, b)])
    s = g.add_op("reduce", [h], {"dims": [1], "kind": "max"})
    g.set_outputs([h, s])
    return g


def summary(p):
    return [(r.key, r.schedule.key(), r.ns, [k for k, _ in r.ranking]) for r in p.results]


def test_tuning_is_deterministic_under_every_executor(tmp_path):
    g = mlp()
    serial = summary(tune(g, "trn1", db=False))
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        pooled = summary(tune(g, "trn1", db=False, executor=ex))
    with cf.ThreadPoolExecutor(2) as ex:
        threaded = summary(tune(g, "trn1", db=False, executor=ex))
    assert serial == pooled == threaded


def test_dask_local_cluster_gives_the_same_plan():
    import distributed                              # the [test] extra installs dask
    g = mlp(128, 256, 512)
    serial = summary(tune(g, "trn1", db=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            dasked = summary(tune(g, "trn1", db=False, executor=client.get_executor()))
    assert serial == dasked


def test_second_run_is_all_cache_hits(tmp_path):
    db = tmp_path / "t.db"
    first = tune(mlp(), "trn1", db=db)
    assert all(not r.cache_hit and r.priced > 0 for r in first.results)
    second = tune(mlp(), "trn1", db=db)
    assert all(r.cache_hit and r.priced == 0 for r in second.results)
    assert summary(first)[0][1] == summary(second)[0][1]
    assert second.wall_s < 1.0


def test_a_truncated_database_is_rebuilt_with_a_warning(tmp_path):
    db = tmp_path / "t.db"
    tune(mlp(128, 128, 128), "trn1", db=db)
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3] + b"garbage" * 50)
    for extra in ("-wal", "-shm"):
        Path(str(db) + extra).unlink(missing_ok=True)
    with pytest.warns(TuningDBWarning, match="rebuilt"):
        plan_ = tune(mlp(128, 128, 128), "trn1", db=db)
    assert plan_.results and (tmp_path / "t.corrupt").exists()


def test_a_foreign_file_is_rebuilt_too(tmp_path):
    db = tmp_path / "t.db"
    db.write_text("this is not a database\n" * 100)
    with pytest.warns(TuningDBWarning):
        TuningDB(db)
    con = sqlite3.connect(db)
    assert con.execute("select count(*) from candidate").fetchone() == (0,)


def test_two_processes_tuning_at_once_lose_nothing(tmp_path):
    db = tmp_path / "shared.db"
    code = ("import sys; sys.path.insert(0, %r); from tests.tune.test_tuner import mlp; "
            "from lowering.tune import tune; "
            "p = tune(mlp(%%d, 256, 512), 'trn1', db=%r); print(p.results[0].key)"
            % (str(ROOT), str(db)))
    procs = [subprocess.Popen([sys.executable, "-c", code % m], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True) for m in (128, 256)]
    keys = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    store = TuningDB(db)
    rows = store.conn.execute("select key from best").fetchall()
    assert len(rows) == 4 and all(any(k in r[0] for r in rows) for k in keys)


def dot(M, K, N, dt="bfloat16"):
    g = Graph("mm")
    a = g.param(TensorType((M, K), dt), "x")
    b = g.param(TensorType((K, N), dt), "w")
    g.set_outputs([g.add_op("dot", [a, b], {"lhs_contract": [1], "rhs_contract": [0]})])
    return g


def test_a_candidate_that_fails_verification_is_never_selected(monkeypatch):
    g = dot(2048, 2048, 1024)
    honest = tune(g, "trn1", db=False)
    best = honest.results[0]
    assert best.schedule != best.default                  # there is something to refuse
    real = tuner_mod.verify

    def liar(sa, schedule, target, seed=0):
        if schedule == best.schedule:
            return Verdict(False, "full problem", message="planted failure")
        return real(sa, schedule, target, seed)
    monkeypatch.setattr(tuner_mod, "verify", liar)
    again = tune(g, "trn1", db=False).results[0]
    assert again.schedule != best.schedule
    assert (best.schedule.key(), "planted failure") in again.rejected
    assert again.ns <= again.default_ns


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 300), st.integers(1, 400), st.integers(1, 700),
       st.sampled_from(["float32", "bfloat16"]), st.integers(0, 10 ** 6))
def test_tuned_programs_match_numpy_and_are_never_slower(M, K, N, dt, seed):
    g = mlp(M, K, N, dt)
    p = tune(g, "trn1", db=False)
    for r in p.results:
        assert r.ns <= r.default_ns
        assert r.verified != "not verified"
    rng = np.random.default_rng(seed)
    npdt = ml_dtypes.bfloat16 if dt == "bfloat16" else np.float32
    xs = [(rng.standard_normal(tuple(q.type.shape)) * 0.5).astype(npdt) for q in g.params]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outs = run(lower_graph(g, "trn1", schedules=p.schedules), xs)
    for got, ref in zip(outs, evaluate(g, *xs)):
        tol = 3e-2 if dt == "bfloat16" else 1e-4
        assert_close(np.asarray(got).reshape(ref.shape), ref, rtol=tol, atol=tol)


def test_report_exports():
    p = tune(mlp(), "trn1", db=False)
    assert "over the default" in p.report() or "the default is the fastest" in p.report()
    assert p.to_csv().startswith("group,schedule,fast_ns,full_ns,winner")
    assert '"groups"' in p.to_json()


def test_the_published_matmul_tunes_to_the_tutorial_time_or_better():
    (group,) = plan(dot(4096, 8192, 8192))
    from lowering.tune import price_fast, standalone
    from device.arch import get_arch
    arch = get_arch("trn1")
    space = MatmulSchedule.space(group.problem(), arch)
    fast = sorted((price_fast(standalone(group), s, arch).total_ns, s.key()) for s in space)
    assert fast[0][0] <= 6.97e6                              # the fast pricer finds it
