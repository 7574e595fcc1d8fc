"""The tuner's search: candidates the fast pricer cannot describe (priced by the full model
already) are ranked with exact prices, never behind a biased closed form."""
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

    def biased(sa, s, arch):
        if s == special:
            return price_full(sa, s, arch)                    # how='full': the fall-back path
        est = price_full(sa, s, arch)
        return Estimate(est.total_ns * 0.01, est.busy, "fast")   # a closed form biased low
    monkeypatch.setattr(jobs, "price_fast", biased)
    res = tune(dot(), "trn1", db=False, top_k=2).results[0]
    ranked = [k for k, _ in res.ranking]
    assert special.key() in ranked                           # confirmed beside the estimates
    assert len(ranked) == len(set(ranked)) >= 3
    exact = price_full(standalone(plan(dot())[0]), special, get_arch("trn1")).total_ns
    assert dict(res.ranking)[special.key()] == exact
