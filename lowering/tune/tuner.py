"""The autotuner: per fusion group, search the schedule space against the timing model, verify the
winner on the emulator, cache it.

For each tunable group of a graph (values between groups go through HBM, so groups are tuned
independently and the search is a sum of spaces, not a product):

1. **Cache.** The key is the group's structural key + target + arch-table hash + timing-model
   and search-space versions. A verified best row is used as it is: nothing is priced.
2. **Search.** The legal space (``Schedule.space``; the default is candidate 0) is priced with
   the fast pricer: exhaustively when it has at most ``search.EXHAUSTIVE`` candidates, else
   from seeds (the default, its one-knob neighbours, a seeded sample) by local search over
   neighbouring knob values (``lowering.tune.search``), within ``budget_s`` (the best so far
   is always returned).
3. **Confirm.** The ``top_k`` cheapest candidates and the default are priced with the full
   event scheduler -- for a big matmul group on problems with its two loops cut to 3 and 4
   iterations, extrapolated bilinearly (``pricer.price_truncated``, within ~1% of the full
   run; a candidate within ``CLOSE`` of the default is then priced in full) -- and ranked by
   that price, ties broken by canonical (space) order.
4. **Verify.** Candidates are run on the emulator in ranking order (``verify_top`` of them,
   default 3, fresh buffers, compared with the NumPy reference); a failing candidate is recorded
   and the next promoted. A candidate slower than the default is never chosen, and an
   unverified winner is never cached.

Deterministic: the same graph and target give the same winner and ranking in any process,
under any executor (the objective is the model, not a measurement).

    >>> from lowering.ir import Graph, TensorType
    >>> g = Graph("mm"); x = g.param(TensorType((512, 1024), "bfloat16"), "x")
    >>> w = g.param(TensorType((1024, 1024), "bfloat16"), "w")
    >>> g.set_outputs([g.add_op("dot", [x, w], {"lhs_contract": [1], "rhs_contract": [0]})])
    >>> plan = tune(g, "trn1", db=False)
    >>> plan.results[0].speedup >= 1.0, plan.results[0].verified
    (True, 'full problem')
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from concurrent.futures import Executor

from device.arch import get_arch

from ..lower.driver import groups_of
from ..lower.schedule import from_key
from .db import TuningDB
from .groups import standalone, tunable
from .jobs import run_jobs
from .search import search
from .verify import verify

TIMING_MODEL_VERSION = "timing-2026.12c"   # bump when device/timing or isa costs change meaning
SPACE_VERSION = "space-3"                  # bump when a Schedule's candidates() change
CLOSE = 0.02             # confirmed within this of the default: decided by the full model


def arch_hash(arch) -> str:
    return hashlib.sha1(repr(arch).encode()).hexdigest()[:10]


def cache_key(group, arch) -> str:
    return f"{group.key}|{arch.name}|{arch_hash(arch)}|{TIMING_MODEL_VERSION}|{SPACE_VERSION}"


@dataclasses.dataclass
class GroupResult:
    """Why a group's winner won: its price, the default's, the confirmed ranking."""

    key: str
    text: str
    schedule: object
    default: object
    ns: float
    default_ns: float
    ranking: list               # [(schedule key, full ns)] confirmed with the full model
    priced: int                 # candidates priced (fast) in this run; 0 on a cache hit
    space: int
    verified: str               # how the winner was verified ('full problem' / 'reduced ...')
    rejected: list = dataclasses.field(default_factory=list)   # [(schedule key, reason)]
    cache_hit: bool = False
    fast: dict = dataclasses.field(default_factory=dict)       # {schedule key: fast ns}
    busy: dict = dataclasses.field(default_factory=dict)       # winner's per-engine busy ns

    @property
    def speedup(self) -> float:
        return self.default_ns / self.ns if self.ns else 1.0

    def why(self) -> str:
        if self.cache_hit:
            return "cached (verified earlier)"
        if self.schedule == self.default:
            return "the default is the fastest confirmed candidate"
        bott = max(self.busy, key=self.busy.get) if self.busy else "?"
        return (f"{self.speedup:.2f}x over the default ({self.default_ns / 1e3:.1f} -> "
                f"{self.ns / 1e3:.1f} us modelled; bottleneck {bott})")


@dataclasses.dataclass
class TunedPlan:
    """``{group key: Schedule}`` for ``lower_graph(schedules=...)`` plus the report."""

    target: str
    schedules: dict
    results: list
    wall_s: float

    def report(self, top: int = 3) -> str:
        lines = [f"tuned {len(self.results)} group(s) for {self.target} in {self.wall_s:.2f} s"]
        for r in self.results:
            lines.append(f"  {r.key}: {r.schedule}  {r.why()}  [verified: {r.verified}; "
                         f"{r.priced}/{r.space} priced]")
            for k, ns in r.ranking[:top]:
                lines.append(f"      {ns / 1e3:10.1f} us  {from_key(k)}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"target": self.target, "wall_s": self.wall_s, "groups": [
            {"key": r.key, "schedule": r.schedule.key(), "default": r.default.key(),
             "ns": r.ns, "default_ns": r.default_ns, "speedup": r.speedup,
             "verified": r.verified, "cache_hit": r.cache_hit, "priced": r.priced,
             "space": r.space, "ranking": r.ranking, "rejected": r.rejected, "fast": r.fast}
            for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    def to_csv(self) -> str:
        rows = ["group,schedule,fast_ns,full_ns,winner"]
        for r in self.results:
            full = dict(r.ranking)
            for k, ns in sorted(r.fast.items(), key=lambda kv: kv[1]):
                rows.append(f"{r.key},\"{k}\",{ns:.1f},{full.get(k, '')},"
                            f"{int(k == r.schedule.key())}")
        return "\n".join(rows) + "\n"

    def save_png(self, path):
        """A scatter of the modelled time of every priced candidate per group (matplotlib)."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("save_png needs matplotlib: pip install 'neuron-emu[plot]'") from e
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for i, r in enumerate(self.results):
            xs = sorted(r.fast.values())
            ax.scatter([i] * len(xs), [x / 1e3 for x in xs], s=10, alpha=0.5, label=None)
            ax.scatter([i], [r.ns / 1e3], marker="*", s=120, color="red",
                       label="winner" if i == 0 else None)
            ax.scatter([i], [r.default_ns / 1e3], marker="x", s=60, color="black",
                       label="default" if i == 0 else None)
        ax.set_xticks(range(len(self.results)), [r.key[:18] for r in self.results],
                      rotation=30, ha="right", fontsize=7)
        ax.set_ylabel("modelled time per candidate (us)")
        ax.set_title(f"autotuning on {self.target}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)


def _open_db(db):
    if db is False:
        return None
    if isinstance(db, TuningDB):
        return db
    return TuningDB(db)


def tune(graph, target=None, *, budget_s: float = 60.0, executor: Executor | None = None,
         db=None, top_k: int = 2, verify_top: int = 3, fuse: bool = True,
         progress=None) -> TunedPlan:
    """Tune every group of ``graph`` for ``target``; see the module doc.

    ``db``: None for the default database (NEURON_EMU_CACHE_DIR or the user cache dir), a path,
    a TuningDB, or False for none. ``executor``: any concurrent.futures.Executor for pricing.
    ``progress(n)``: called with the number of candidates just priced."""
    t0 = time.perf_counter()
    arch = get_arch(target)
    store = _open_db(db)
    results, schedules, seen = [], {}, {}
    groups = [g for g in groups_of(graph, fuse) if tunable(g, arch)]
    for group in groups:
        if group.key in seen:                  # the same structure again: the same answer
            continue
        left = budget_s - (time.perf_counter() - t0)
        res = _tune_group(group, arch, store, executor, max(left, 0.0) / max(1, len(groups)),
                          top_k, verify_top, progress)
        seen[group.key] = res
        results.append(res)
        schedules[group.key] = res.schedule
    return TunedPlan(arch.name, schedules, results, time.perf_counter() - t0)


def _tune_group(group, arch, store, executor, budget_s, top_k, verify_top, progress):
    cls = group.schedule_class()
    problem = group.problem()
    default = cls.default(problem, arch)
    ckey = cache_key(group, arch)
    if store is not None:
        hit = store.best(ckey)
        if hit is not None:
            return GroupResult(group.key, group.text, from_key(hit["schedule"]), default,
                               hit["ns"], hit["default_ns"], hit["report"].get("ranking", []),
                               0, hit["report"].get("space", 0), hit["verified"],
                               cache_hit=True)
    t0 = time.perf_counter()
    space = cls.space(problem, arch)
    order = {s.key(): i for i, s in enumerate(space)}
    sa = standalone(group)
    known = store.candidates(ckey) if store is not None else {}
    fast = {k: ns for k, (ns, how) in known.items() if how == "fast"}
    full = {k: ns for k, (ns, how) in known.items() if how == "full"}
    priced, busy = 0, {}

    def price(batch):
        nonlocal priced
        keys = [s.key() for s in batch]
        todo = [k for k in keys if k not in fast]
        got = run_jobs(sa, todo, arch.name, "fast", executor, progress) if todo else {}
        fast.update({k: v[0] for k, v in got.items()})
        priced += len(got)
        exact = {k: v[0] for k, v in got.items() if v[2] == "full"}   # the fast pricer fell
        full.update(exact)                                           # back to the full model
        busy.update({k: v[1] for k, v in got.items() if v[2] == "full"})
        if store is not None and got:
            store.put_candidates([(ckey, k, ns, "fast") for k, (ns, _, _) in got.items()] +
                                 [(ckey, k, ns, "full") for k, ns in exact.items()])
        return {s: fast[k] for s, k in zip(batch, keys)}

    search(space, price, lambda: time.perf_counter() - t0 > budget_s)
    # estimates and exact prices are ranked apart: a closed form's bias must not hide (or
    # promote) the candidates it cannot describe, which were priced exactly already
    estimated = [k for k in fast if k not in full]
    ranked = sorted(estimated, key=lambda k: (fast[k], order.get(k, 1 << 30)))
    exact_ranked = sorted((k for k in fast if k in full),
                          key=lambda k: (full[k], order.get(k, 1 << 30)))
    confirm = list(dict.fromkeys([default.key()] + ranked[:top_k] + exact_ranked[:top_k]))
    need = [k for k in confirm if k not in full]
    got = run_jobs(sa, need, arch.name, "confirm", executor)
    truncated = {k for k, v in got.items() if v[2] == "truncated"}
    dk = default.key()
    # truncated confirmation is within ~1% of the full model: a candidate that close to the
    # default is decided by the full model, so a tuned group is never slower than the default
    d_ns = got[dk][0] if dk in got else full[dk]
    close = [k for k in confirm if k != dk and k in got and
             (1 - CLOSE) * d_ns <= got[k][0] <= (1 + CLOSE) * d_ns]
    again = [k for k in ([dk] if close and dk in truncated else []) + close if k in truncated]
    if again:
        got.update(run_jobs(sa, again, arch.name, "full", executor))
    for k, (ns, b, _) in got.items():
        full[k] = ns
        busy[k] = b
    if store is not None and got:
        store.put_candidates([(ckey, k, ns, "full") for k, (ns, _, _) in got.items()])
    default_ns = full[default.key()]
    ranking = sorted(((k, full[k]) for k in confirm), key=lambda kv: (kv[1], order.get(kv[0], 0)))
    rejected, winner, how = [], None, ""
    for k, ns in ranking[:max(1, verify_top)]:
        if ns > default_ns:
            break
        verdict = verify(sa, from_key(k), arch.name)
        if verdict.ok:
            winner, how = k, verdict.how
            break
        rejected.append((k, verdict.message or verdict.how))
    if winner is None:                          # the default, verified like any other
        verdict = verify(sa, default, arch.name)
        winner, how = default.key(), verdict.how if verdict.ok else "not verified"
        if not verdict.ok:
            rejected.append((default.key(), verdict.message))
    res = GroupResult(group.key, group.text, from_key(winner), default, full[winner], default_ns,
                      ranking, priced, len(space), how, rejected, False,
                      {k: fast[k] for k in fast}, busy.get(winner, {}))
    if store is not None and how != "not verified":
        store.put_best(ckey, winner, res.ns, default_ns, how,
                       {"ranking": ranking, "space": len(space), "rejected": rejected})
    return res
