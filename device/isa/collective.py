"""Collective instructions across ranks (``nki.collectives``), run by ``device.collectives``.

One program is loaded on every rank (as the Neuron runtime does); each rank has its own
``Memory`` whose ``rank`` and ``world`` attributes the multi-rank runner sets. A collective is ONE
instruction per rank:

    collective[SP] kind=all_reduce srcs=[sbuf.a{..}] dsts=[sbuf.b{..}] groups=((0, 1, 2, 3),) op=add

Protocol (no threads, like sendrecv in isa/multicore.py): at its k-th collective a rank posts a
snapshot of its sources into ``world.posts[k][rank]`` once, then waits (``Blocked``) until every
rank of its rank-list has posted its k-th collective. Then it checks that they all agree (same
kind, groups, op, dims, shapes and dtypes: otherwise ``CollectiveMismatchError`` naming each
rank's line) and writes its own destinations from the snapshots. Pure NumPy semantics per kind:

* all_reduce: dst = op over the group's srcs;  reduce_scatter: chunk ``pos`` of that along dim;
* all_gather: dst = concat of the group's srcs along ``dim`` in rank-list order;
* all_to_all: src is split along ``dim`` in n chunks; chunk j goes to the j-th rank; dst = concat;
* all_gather_v / all_to_all_v: flat element buffers sized by run-time counts (``meta``); the
  j-th rank's piece lands in slot j of n equal dst slots unless recv_displs are given, and the
  received counts go into meta row 2 when they were not known (device/collectives_v.py);
* permute: dst receives the src of the rank whose (source, target) pair names this rank (a
  ring for the implicit forms); permute_reduce sends ``op(src0, src1)``.
"""
from __future__ import annotations

import numpy as np

from .. import alu as A
from ..arch import COLLECTIVE_LINKS
from ..collectives_v import (VARIABLE_KINDS, check_variable, deliver_variable, read_meta,
                             snapshot)
from ..errors import HardwareRuleError, UserKernelError
from ..tensor import View
from . import defop
from .multicore import Blocked, core_of

KINDS = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all", "all_gather_v",
         "all_to_all_v", "permute", "permute_reduce")


class CollectiveMismatchError(UserKernelError):
    """Ranks of one replica group reached different collectives (or with different operands)."""


class World:
    """What the ranks of one run share: posted collectives and the set of finished ranks."""

    def __init__(self, size: int):
        self.size = size
        self.posts: dict = {}       # (core, k) -> {rank: (instr, [src snapshots], meta values)}
        self.count: dict = {}       # (rank, core) -> number of collectives it has posted
        self.pending: dict = {}     # (rank, core) -> the instruction whose post is done
        self.done: set = set()      # (rank, core) streams that have finished


def participants(i, rank) -> tuple:
    """The ranks that must reach this collective together with ``rank`` (its rank-list)."""
    if i.args["kind"] in ("permute", "permute_reduce") and i.args.get("pairs"):
        return tuple(sorted({r for p in i.args["pairs"] for r in p}))
    for g in i.args["groups"]:
        if rank in g:
            return tuple(g)
    raise HardwareRuleError("replica-group", f"collective {i.args['kind']}: rank {rank} is not in "
                            f"any rank-list of the replica group {list(map(list, i.args['groups']))}",
                            operand="replica_group", value=rank, limit=i.args["groups"], loc=i.loc)


def _signature(i):
    a = i.args
    return (a["kind"], a["groups"], A.op_name(a.get("op")) if a.get("op") is not None else None,
            a.get("dim"), a.get("pairs"), a.get("has_rdispls"), a.get("recv_known"),
            tuple((v.shape, v.dtype) for v in a["srcs"]),
            tuple((v.shape, v.dtype) for v in a["dsts"]))


def _describe(i):
    a = i.args
    op = f" op={A.op_name(a['op'])}" if a.get("op") is not None else ""
    shapes = ", ".join(f"{v.dtype}{list(v.shape)}" for v in a["srcs"])
    return f"{a['kind']}{op} srcs=[{shapes}] groups={[list(g) for g in a['groups']]}"


def _check_agree(i, k, posts, ranks):
    mine = _signature(i)
    bad = [r for r in ranks if _signature(posts[r][0]) != mine]
    if bad:
        lines = [f"collective #{k} does not match across ranks {list(ranks)}:"]
        for r in ranks:
            ins = posts[r][0]
            lines.append(f"  rank {r}: {_describe(ins)} at {ins.loc}")
        raise CollectiveMismatchError("\n".join(lines), loc=i.loc)


def _reduce(op, arrays):
    fn = A.alu(op).fn
    acc = arrays[0].astype(np.float32)
    for a in arrays[1:]:
        acc = np.asarray(fn(acc, a.astype(np.float32)), np.float32)
    return acc


def _meta(mem, i):
    m = i.args.get("meta")
    if m is None:
        return None
    return np.asarray(mem.read(m, i.loc)).astype(np.int64).reshape(-1)


@defop("collective", engine="SP", outputs=("dsts", "meta_out"), inputs=("srcs", "srcs1", "meta"))
class Collective:
    """A collective communication step between the ranks of a replica group (see module doc)."""

    def check(i, arch):
        a = i.args
        if a.get("kind") not in KINDS:
            raise UserKernelError(f"collective: unknown kind {a.get('kind')!r}", loc=i.loc)
        for n in ("srcs", "dsts"):
            if not a[n] or not all(isinstance(v, View) for v in a[n]):
                raise UserKernelError(f"nki.collectives.{a['kind']}: {n} must be a non-empty list "
                                      f"of tensors", loc=i.loc)
        kinds = {v.buffer.kind for v in list(a["srcs"]) + list(a["dsts"])}
        if "psum" in kinds or len(kinds) > 1:
            raise HardwareRuleError("collective-buffer", f"nki.collectives.{a['kind']}: tensors "
                                    f"must all be in HBM or all in SBUF (got "
                                    f"{', '.join(sorted(kinds))})", operand="srcs",
                                    value=sorted(kinds), limit="all hbm or all sbuf", loc=i.loc)
        for v in list(a["srcs"]) + list(a["dsts"]) + list(a.get("srcs1") or ()):
            if v.storage.kind == "input":
                raise HardwareRuleError(
                    "collective-io", f"nki.collectives.{a['kind']}: {v.storage.name} is a kernel "
                    f"input; collectives cannot read or write the kernel's input/output tensors: "
                    f"dma_copy it into an nl.ndarray first", operand=v.storage.name,
                    value="kernel input", limit="an intermediate tensor", loc=i.loc)
        if len(a["srcs"]) != len(a["dsts"]):
            raise UserKernelError(f"nki.collectives.{a['kind']}: {len(a['srcs'])} srcs but "
                                  f"{len(a['dsts'])} dsts", loc=i.loc)
        seen = set()
        for g in a["groups"]:
            if seen & set(g) or len(set(g)) != len(g):
                raise HardwareRuleError("replica-group", f"nki.collectives.{a['kind']}: rank-lists "
                                        f"{[list(x) for x in a['groups']]} overlap; each rank may be "
                                        f"in one rank-list", operand="replica_group",
                                        value=a["groups"], limit="disjoint", loc=i.loc)
            seen |= set(g)
        if a["kind"] in VARIABLE_KINDS:
            check_variable(i)

    def run(i, mem):
        world = getattr(mem, "world", None)
        if world is None:
            raise UserKernelError(f"nki.collectives.{i.args['kind']} needs several ranks: start "
                                  f"the kernel with nki.collectives.run(kernel, inputs_per_rank)",
                                  loc=i.loc)
        me, plane = mem.rank, core_of(i)             # core c of each rank meets core c
        slot = (me, plane)
        if world.pending.get(slot) is not i:         # first attempt: post once
            k = world.count.get(slot, 0)
            world.count[slot] = k + 1
            if i.args["kind"] in VARIABLE_KINDS:
                ranks = participants(i, me)
                meta = read_meta(i, mem, len(ranks))
                snap = [snapshot(i, mem, v, meta, ranks) for v in i.args["srcs"]]
            else:
                meta = _meta(mem, i)
                snap = [mem.read(v, i.loc).copy() for v in i.args["srcs"]]
            if i.args.get("srcs1"):
                snap = [_reduce(i.args["op"], [s, mem.read(v, i.loc)])
                        for s, v in zip(snap, i.args["srcs1"])]
            world.posts.setdefault((plane, k), {})[me] = (i, snap, meta)
            world.pending[slot] = i
        k = world.count[slot] - 1
        posts = world.posts[(plane, k)]
        ranks = participants(i, me)
        missing = [r for r in ranks if r not in posts]
        if missing:
            raise Blocked(i, f"waits for rank(s) {missing} to reach collective #{k} "
                             f"({i.args['kind']})")
        _check_agree(i, k, posts, ranks)
        world.pending.pop(slot, None)
        _deliver(i, mem, me, ranks, posts)

    def cost(i, arch):
        return collective_cost_ns(i, arch)


def collective_cost_ns(i, arch) -> float:
    """Modelled duration of one collective instruction: ring algorithms over the rank's share
    of the NeuronLink bandwidth (formulas in device/collectives.py)."""
    link = COLLECTIVE_LINKS.get(arch.name) or COLLECTIVE_LINKS["trn2"]
    a = i.args
    kind = a["kind"]
    nbytes = float(sum(v.size * v.itemsize for v in a["srcs"]))
    if kind in ("permute", "permute_reduce"):
        n, steps, share = 2, 1, 1.0
    else:
        n = max((len(g) for g in a["groups"]), default=1)
        if n <= 1:
            return link.hop_ns
        steps = n - 1
        share = {"all_reduce": 2 * (n - 1) / n, "all_gather": float(n - 1),
                 "all_gather_v": float(n - 1)}.get(kind, (n - 1) / n)
        if kind == "all_reduce":
            steps = 2 * (n - 1)
    return steps * link.hop_ns + share * nbytes / link.rank_bytes_per_ns


def _deliver(i, mem, me, ranks, posts):
    a = i.args
    kind, n, pos = a["kind"], len(ranks), ranks.index(me)
    dim = int(a.get("dim") or 0)
    for t, dst in enumerate(a["dsts"]):
        srcs = [posts[r][1][t] for r in ranks]
        if kind == "all_reduce":
            out = _reduce(a["op"], srcs)
        elif kind == "reduce_scatter":
            out = np.array_split(_reduce(a["op"], srcs), n, axis=dim)[pos]
        elif kind == "all_gather":
            out = np.concatenate(srcs, axis=dim)
        elif kind == "all_to_all":
            out = np.concatenate([np.array_split(s, n, axis=dim)[pos] for s in srcs], axis=dim)
        elif kind in ("all_gather_v", "all_to_all_v"):
            out = deliver_variable(i, mem, me, ranks, posts, t, dst)
            if out is None:                               # written piece by piece
                continue
        else:                                             # permute / permute_reduce
            pairs = a.get("pairs") or tuple((ranks[j], ranks[(j + 1) % n]) for j in range(n))
            frm = [s for s, d in pairs if d == me]
            if not frm:
                continue                                  # nobody sends to this rank
            out = posts[frm[0]][1][t]
        out = np.asarray(out)
        if out.size != dst.size:
            raise HardwareRuleError(
                "collective-shape", f"nki.collectives.{kind}: rank {me} receives {out.size} "
                f"elements {list(out.shape)} but dst has {dst.size} {list(dst.shape)}",
                operand="dsts", value=list(out.shape), limit=list(dst.shape), loc=i.loc)
        mem.write(dst, out.reshape(dst.shape))


@defop("collective_rank", engine="SP", outputs=(), inputs=())
class CollectiveRank:
    """reg = this rank's id (``rank_id``), or the ring position being processed at iteration k
    (``collective_permute_implicit_current_processing_rank_id``)."""

    def run(i, mem):
        me = getattr(mem, "rank", 0)
        groups = i.args.get("groups")
        v = me
        if groups is not None:
            g = next((g for g in groups if me in g), (me,))
            v = g[(g.index(me) - int(i.args.get("iteration", 0))) % len(g)]
        if getattr(mem, "regs", None) is None:
            mem.regs = {}
        mem.regs[i.args["reg"].id] = int(v)

    def cost(i, arch):
        return arch.sem_latency_ns
