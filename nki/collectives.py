"""``nki.collectives``: collective communication between ranks, emulated for N ranks.

A kernel that uses collectives is compiled once and started on every rank, each with its own
inputs (as the Neuron runtime does). Here ``nki.collectives.run`` plays the runtime:

    import nki, nki.language as nl, nki.isa as nisa, nki.collectives as ncc

    @nki.jit(target="trn2")
    def allsum(x):
        out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        s = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=x)
        ncc.all_reduce(srcs=[t], dsts=[s], replica_group=ncc.ReplicaGroup([[0, 1, 2, 3]]), op=nl.add)
        nisa.dma_copy(dst=out, src=s)
        return out

    outs = ncc.run(allsum, [(x0,), (x1,), (x2,), (x3,)])   # one output per rank

Each call appends one ``collective`` instruction (device/isa/collective.py): every rank of the
rank-list meets there; ranks that reach different collectives raise ``CollectiveMismatchError``
and ranks that never meet raise ``CollectiveDeadlockError``, each naming every rank's line. The
timing model prices transfers over NeuronLink (device/collectives.py, arch.COLLECTIVE_LINKS).
``rank_id()`` and ``collective_permute_implicit_current_processing_rank_id`` return registers set
at run time (one program serves every rank), usable as ``scalar_offset`` / loop bounds.
"""
from __future__ import annotations

import enum

from device.errors import UserKernelError, user_loc
from device.isa.control import VirtualRegister
from device.tensor import View

from .language.core import NKIObject
from .tracing import Kernel, current, maybe_current


class rg_partition_op(enum.Enum):
    """How ``ReplicaGroup.from_partition_op`` maps a rank to its rank-list id."""
    bitwise_and = "bitwise_and"
    div = "div"
    mod = "mod"


class ReplicaGroup(NKIObject):
    """Rank-lists a collective runs in, e.g. ``ReplicaGroup([[0, 1, 2, 3], [4, 5, 6, 7]])``.

    The collective runs independently inside each rank-list; a rank may appear in one list only.
    """

    def __init__(self, groups=(), replica_groups=None):
        groups = replica_groups if replica_groups is not None else groups
        if isinstance(groups, ReplicaGroup):
            groups = groups.groups
        try:
            self.groups = tuple(tuple(int(r) for r in g) for g in groups)
        except TypeError:
            raise UserKernelError(f"ReplicaGroup takes a list of rank lists such as [[0, 1], "
                                  f"[2, 3]], got {groups!r}", loc=user_loc()) from None

    @staticmethod
    def from_partition_op(world_size, op, operand):
        """Group ranks 0..world_size-1 by ``op(rank, operand)``: div 4 -> [[0..3], [4..7]]."""
        key = {rg_partition_op.bitwise_and: lambda r: r & operand,
               rg_partition_op.div: lambda r: r // operand,
               rg_partition_op.mod: lambda r: r % operand}[op]
        lists: dict = {}
        for r in range(world_size):
            lists.setdefault(key(r), []).append(r)
        return ReplicaGroup([lists[k] for k in sorted(lists)])

    def __eq__(self, other):
        return isinstance(other, ReplicaGroup) and other.groups == self.groups

    def __hash__(self):
        return hash(self.groups)

    def __repr__(self):
        return f"ReplicaGroup({[list(g) for g in self.groups]})"


def _group(api, rg):
    if rg is None:
        raise UserKernelError(f"nki.collectives.{api}: replica_group is required", loc=user_loc(3))
    return rg.groups if isinstance(rg, ReplicaGroup) else ReplicaGroup(rg).groups


def _tensors(api, name, xs):
    if isinstance(xs, View):
        xs = [xs]
    if not isinstance(xs, (list, tuple)) or not all(isinstance(x, View) for x in xs):
        raise UserKernelError(f"nki.collectives.{api}: {name} must be a list of tensors, got "
                              f"{type(xs).__name__}", loc=user_loc(3))
    return tuple(xs)


def _emit(api, kind, srcs, dsts, **args):
    from .isa import NkiInstruction
    tr = current(f"nki.collectives.{api}")
    name = args.pop("name", None)
    args.pop("priority", None)
    ins = tr.program.emit("collective", loc=user_loc(3), name=name, kind=kind,
                          srcs=_tensors(api, "srcs", srcs), dsts=_tensors(api, "dsts", dsts),
                          **args)
    return NkiInstruction(ins)


def all_reduce(srcs, dsts, replica_group, op, priority=None, name=None):
    """Every rank of a rank-list gets ``op`` (nl.add/minimum/maximum) over their srcs.

        ncc.all_reduce(srcs=[t], dsts=[s], replica_group=ncc.ReplicaGroup([[0, 1]]), op=nl.add)
    """
    return _emit("all_reduce", "all_reduce", srcs, dsts, groups=_group("all_reduce", replica_group),
                 op=op, name=name)


def all_gather(srcs, dsts, replica_group, collective_dim=0, priority=None, name=None):
    """dst = the rank-list's srcs concatenated along ``collective_dim``, in rank-list order.

        g = nl.ndarray((p, 4 * f), t.dtype, buffer=nl.sbuf)       # 4 ranks, t is (p, f)
        ncc.all_gather(srcs=[t], dsts=[g], replica_group=rg, collective_dim=1)
    """
    return _emit("all_gather", "all_gather", srcs, dsts, groups=_group("all_gather", replica_group),
                 dim=int(collective_dim), name=name)


def reduce_scatter(srcs, dsts, replica_group, op, collective_dim=0, priority=None, name=None):
    """dst = the j-th of n chunks (along ``collective_dim``) of ``op`` over the srcs, j = my
    position in the rank-list.

        ncc.reduce_scatter(srcs=[t], dsts=[part], replica_group=rg, op=nl.add, collective_dim=1)
    """
    return _emit("reduce_scatter", "reduce_scatter", srcs, dsts,
                 groups=_group("reduce_scatter", replica_group), op=op, dim=int(collective_dim),
                 name=name)


def all_to_all(srcs, dsts, replica_group, collective_dim=0, priority=None, name=None):
    """src is split in n chunks along ``collective_dim``; chunk j goes to the j-th rank; dst is
    the received chunks concatenated in rank-list order.

        ncc.all_to_all(srcs=[t], dsts=[r], replica_group=rg, collective_dim=1)
    """
    return _emit("all_to_all", "all_to_all", srcs, dsts,
                 groups=_group("all_to_all", replica_group), dim=int(collective_dim), name=name)


def all_gather_v(srcs, dsts, replica_group, metadata_tensor, recv_counts_known=False,
                 has_rdispls=False, priority=None, name=None):
    """Variable-length all-gather of flat HBM buffers. Every rank broadcasts one chunk,
    ``src[send_displs[0] : send_displs[0] + send_counts[0]]`` (rows 0/1 of its uint32
    ``metadata_tensor``, rows x n; only their first column is read). Without ``has_rdispls``
    dst is split in n equal slots and the chunk of the j-th rank of the rank-list lands at the
    start of slot j; with it, at recv_displs[j] (row 3). With ``recv_counts_known=False`` the
    counts received are written into row 2; with ``True`` row 2 must hold them already.

        meta = [[c] * n, [0] * n, [0] * n]           # (3, n) uint32 in HBM: send c elements
        ncc.all_gather_v(srcs=[s], dsts=[g], replica_group=rg, metadata_tensor=m)
        # g (n * slot elements): rank j's c_j elements at g[j * slot:]; m[2] = [c_0, .., c_n-1]
    """
    return _emit("all_gather_v", "all_gather_v", srcs, dsts,
                 groups=_group("all_gather_v", replica_group), meta=metadata_tensor,
                 meta_out=None if recv_counts_known else metadata_tensor,
                 recv_known=bool(recv_counts_known), has_rdispls=bool(has_rdispls), name=name)


def all_to_all_v(srcs, dsts, replica_group, metadata_tensor, recv_counts_known=False,
                 has_rdispls=False, priority=None, name=None):
    """Flat all-to-all of run-time sizes between HBM buffers. ``metadata_tensor`` (uint32,
    2-4 rows x n): send_counts, send_displs, recv_counts, recv_displs (elements) per peer.
    Without ``has_rdispls`` dst is split in n equal slots and the piece from the j-th rank of
    the rank-list lands at the start of slot j; with it, at recv_displs[j]. With
    ``recv_counts_known=False`` the counts actually received are written into row 2 (when the
    metadata has one), as the runtime does; with ``True`` row 2 must hold them already.

        meta = [[c0, c1], [0, c0], [0, 0]]          # rank sends c_j elements to peer j
        ncc.all_to_all_v(srcs=[s], dsts=[r], replica_group=rg, metadata_tensor=m)
    """
    return _emit("all_to_all_v", "all_to_all_v", srcs, dsts,
                 groups=_group("all_to_all_v", replica_group), meta=metadata_tensor,
                 meta_out=None if recv_counts_known else metadata_tensor,
                 recv_known=bool(recv_counts_known), has_rdispls=bool(has_rdispls), name=name)


def collective_permute(srcs, dsts, source_target_pairs, priority=None, name=None):
    """Each (source, target) pair sends the source rank's src into the target rank's dst.

        ncc.collective_permute(srcs=[x_hbm], dsts=[y_hbm], source_target_pairs=[(0, 1), (1, 0)])
    """
    pairs = tuple((int(s), int(t)) for s, t in source_target_pairs)
    targets = [t for _, t in pairs]
    if len(set(targets)) != len(targets):
        raise UserKernelError(f"nki.collectives.collective_permute: a rank receives from several "
                              f"sources in {list(pairs)}", loc=user_loc(2))
    ranks = sorted({r for p in pairs for r in p})
    return _emit("collective_permute", "permute", srcs, dsts, groups=(tuple(ranks),), pairs=pairs,
                 name=name)


def _by_channel(api, xs):
    if not isinstance(xs, (list, tuple)) or not xs:
        raise UserKernelError(f"nki.collectives.{api}: expected a list (one per channel) of "
                              f"one-tensor lists", loc=user_loc(3))
    out = []
    for ch in xs:
        ch = [ch] if isinstance(ch, View) else list(ch)
        if len(ch) != 1:
            raise UserKernelError(f"nki.collectives.{api}: each channel takes exactly one tensor, "
                                  f"got {len(ch)}", loc=user_loc(3))
        out.append(ch[0])
    return out


def collective_permute_implicit(srcs_by_channel, dsts_by_channel, replica_group, channel_ids=(0,),
                                priority=None, name=None):
    """Ring step: every rank sends its src to its successor in the rank-list (one per channel).

        ncc.collective_permute_implicit([[held]], [[incoming]], replica_group=ring)
    """
    srcs = _by_channel("collective_permute_implicit", srcs_by_channel)
    dsts = _by_channel("collective_permute_implicit", dsts_by_channel)
    return _emit("collective_permute_implicit", "permute", srcs, dsts,
                 groups=_group("collective_permute_implicit", replica_group), name=name)


def collective_permute_implicit_reduce(srcs0_by_channel, srcs1_by_channel, dsts_by_channel,
                                       replica_group, op, channel_ids=(0,), priority=None,
                                       name=None):
    """Ring step sending ``op(src0, src1)`` to the successor (received into dst)."""
    api = "collective_permute_implicit_reduce"
    return _emit(api, "permute_reduce", _by_channel(api, srcs0_by_channel),
                 _by_channel(api, dsts_by_channel), srcs1=tuple(_by_channel(api, srcs1_by_channel)),
                 groups=_group(api, replica_group), op=op, name=name)


def rank_id(name=None):
    """A register holding this rank's id (set at run time: one program serves every rank).

        r = ncc.rank_id()
        nisa.dma_copy(dst=t, src=x.ap([[f, p], [1, f]], scalar_offset=r, indirect_dim=0))
    """
    tr = current("nki.collectives.rank_id")
    reg = VirtualRegister("rank")
    tr.program.emit("collective_rank", reg=reg, loc=user_loc(2))
    return reg


def collective_permute_implicit_current_processing_rank_id(iteration_id, replica_group,
                                                           channel_id=0, num_channels=1,
                                                           name=None):
    """A register: the rank whose data a ring step holds at ``iteration_id`` (0 = my own; k =
    the rank k places before me in the rank-list)."""
    tr = current("nki.collectives.collective_permute_implicit_current_processing_rank_id")
    reg = VirtualRegister("ring_rank")
    tr.program.emit("collective_rank", reg=reg, iteration=int(iteration_id),
                    groups=_group("collective_permute_implicit_current_processing_rank_id",
                                  replica_group), loc=user_loc(2))
    return reg


def run(kernel, inputs_per_rank, target=None):
    """Start ``kernel`` on ``len(inputs_per_rank)`` ranks; return each rank's outputs.

    ``inputs_per_rank[r]`` is rank r's positional arguments (a tuple) or keyword arguments (a
    dict). Ranks with the same shapes, dtypes and constants share one compiled program (the
    usual SPMD launch); different constants give a rank its own program (MPMD), which is how a
    kernel can specialise on a rank passed as an argument.

        outs = ncc.run(allsum, [(x,) for x in shards])   # outs[r] is rank r's result
    """
    import numpy as np

    from device.collectives import run_ranks

    from .host_values import as_returned, host_arrays
    if maybe_current() is not None:
        raise UserKernelError("nki.collectives.run launches kernels; call it from host code")
    if not isinstance(kernel, Kernel):
        kernel = Kernel(kernel)
    if not inputs_per_rank:
        raise UserKernelError("nki.collectives.run: give the inputs of at least one rank")
    calls = [(tuple(x), {}) if not isinstance(x, dict) else ((), dict(x))
             for x in inputs_per_rank]
    progs, per_rank = [], []
    for a, kw in calls:
        progs.append(kernel.trace(*a, target=target, **kw))
        per_rank.append(host_arrays(kernel.fn, a, kw))
    outs, mems = run_ranks(progs, per_rank, return_memories=True)
    res = []
    for prog, o, mem in zip(progs, outs, mems):
        # shaped like the view the kernel returned (``o.reshape(...)``), as a one-rank call is
        o = [np.asarray(as_returned(mem, v, x)) for v, x in zip(prog.info.output_views, o)]
        res.append(tuple(o) if prog.info.returns_tuple else (o[0] if len(o) == 1 else
                                                                     (None if not o else tuple(o))))
    return res




__all__ = ["ReplicaGroup", "rg_partition_op", "all_reduce", "all_gather", "all_gather_v",
           "reduce_scatter", "all_to_all", "all_to_all_v", "collective_permute",
           "collective_permute_implicit", "collective_permute_implicit_reduce",
           "collective_permute_implicit_current_processing_rank_id", "rank_id", "run"]
