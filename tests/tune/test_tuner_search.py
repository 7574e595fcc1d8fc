"""The tuner's search: candidates the fast pricer cannot describe (priced by the full model
already) are ranked with exact prices, never behind a biased closed form."""
import pytest
from hypothesis import given, settings, strategies as st

from device.arch import get_arch
from lowering import Graph, TensorType, plan
from lowering.lower import MatmulSchedule
from lowering.tune import jobs, standalone, tune
from lowering.tune.pricer import Estimate, price_full


def dot(M=512, K=1024, N=1024):
    g = Graph("mm")
    x = g.param(TensorType((M, K), "bfloat16"), "x")
    w = g.param(TensorType((K, N), "bfloat16"), "w")
    g.set_outputs([g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})])
    return g


def test_exactly_priced_candidates_are_confirmed_beside_biased_estimates(monkeypatch):
    special = MatmulSchedule(m_group=1, n_tile=128)          # a slow candidate, priced exactly

    closed_form = jobs.price_fast

    def biased(sa, s, arch):
        if s == special:
            return price_full(sa, s, arch)                    # how='full': the fall-back path
        est = closed_form(sa, s, arch)
        return Estimate(est.total_ns * 0.01, est.busy, "fast")   # a closed form biased low
    monkeypatch.setattr(jobs, "price_fast", biased)
    res = tune(dot(), "trn1", db=False, top_k=2).results[0]
    ranked = [k for k, _ in res.ranking]
    assert special.key() in ranked                           # confirmed beside the estimates
    assert len(ranked) == len(set(ranked)) >= 3
    exact = price_full(standalone(plan(dot())[0]), special, get_arch("trn1")).total_ns
    assert dict(res.ranking)[special.key()] == exact


def test_search_module_doctest():
    import doctest
    from lowering.tune import search as search_mod
    result = doctest.testmod(search_mod)
    assert result.attempted > 0 and result.failed == 0


def _space():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class S:
        a: int = 0
        b: int = 0
        c: int = 0

        def knobs(self):
            return dataclasses.asdict(self)
    return [S(a, b, c) for a in range(24) for b in range(24) for c in range(24)]


def test_a_large_space_is_seeded_reproducibly_and_searched_locally():
    from lowering.tune.search import EXHAUSTIVE, search, seeds
    space = _space()
    assert len(space) > EXHAUSTIVE
    assert seeds(space) == seeds(list(space))                    # same space, same sample
    assert seeds(space)[0] == space[0]
    calls = []

    def price(batch):
        calls.append(len(batch))
        return {s: abs(s.a - 20) + abs(s.b - 2) * 3 + abs(s.c - 13) for s in batch}
    seen = search(space, price, lambda: False)
    assert min(seen, key=seen.get) == space[0].__class__(20, 2, 13)
    assert len(seen) < len(space) // 4 and max(calls) <= 64


def test_the_budget_stops_the_search_with_the_best_so_far():
    from lowering.tune.search import search
    space = _space()
    batches = []

    def price(batch):
        batches.append(batch)
        return {s: -s.a for s in batch}
    seen = search(space, price, lambda: len(batches) >= 2)
    assert len(batches) == 2 and len(seen) == sum(map(len, batches))
    assert space[0] in seen                                      # the default comes first


@given(mb=st.integers(7, 9), nb=st.integers(7, 9), k=st.sampled_from([2048, 2200]),
       sched=st.sampled_from([MatmulSchedule(m_group=1, n_tile=128),
                              MatmulSchedule(m_group=2, n_tile=128),
                              MatmulSchedule(order="n", n_group=1, n_tile=128)]))
@settings(max_examples=4, deadline=None)
def test_truncated_confirmation_matches_the_full_model(mb, nb, k, sched):
    from lowering.tune.pricer import price_truncated
    unit_m = 128 * (sched.m_group if sched.order == "m" else 1)
    unit_n = 128 * (sched.n_group if sched.order == "n" else 1)
    sa = standalone(plan(dot(mb * unit_m + 40, k, nb * unit_n + 72))[0])
    est = price_truncated(sa, sched, get_arch("trn1"))
    assert est is not None and est.how == "truncated"
    assert est.total_ns == pytest.approx(price_full(sa, sched, get_arch("trn1")).total_ns,
                                         rel=0.02)


def test_short_loops_are_not_truncated():
    from lowering.tune.pricer import price_truncated
    sa = standalone(plan(dot(512, 2048, 512))[0])                 # 4 x 4 tiles
    assert price_truncated(sa, MatmulSchedule(m_group=1, n_tile=128), get_arch("trn1")) is None
    sa = standalone(plan(dot(1024, 128, 1024))[0])                # 8 x 8 tiles, one K tile
    assert price_truncated(sa, MatmulSchedule(m_group=1, n_tile=128), get_arch("trn1")) is None
