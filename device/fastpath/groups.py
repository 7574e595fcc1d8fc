"""PSUM accumulation groups run as one fp32 matmul (``NEURON_EMU_EXECUTOR=fast`` only).

A kernel accumulates ``dst += stationary_k.T @ moving_k`` over K tiles into one PSUM tile. The
reference computes each product in fp64, rounds it to fp32 and adds it to PSUM in fp32; the fast
path stacks the K tiles and makes one fp32 BLAS call. The two differ only in summation order and
rounding points. Declared bound, per output element (u = 2**-24, K = the group's total
contraction, ``old`` = the PSUM value the group starts from when it accumulates onto one)::

    |fast - reference| <= 2 * (K + 1) * u * (sum_k |stationary[k, m]| * |moving[k, n]| + |old|)

(the standard dot-product error bound, counted for both sides). ``NEURON_EMU_EXECUTOR=exact``
keeps the reference's rounding points, byte for byte.

A group is a run of ``nc_matmul`` into the same PSUM view, the first one opening it (or adding to
it) and the rest adding, where no other instruction in between touches the PSUM tile or writes a
tile a member reads. The fused call happens at the last member, so operands are read there.
"""
from __future__ import annotations

import numpy as np

from .kernels import storer

F32 = np.dtype(np.float32)


def _eligible(ins, facts) -> bool:
    a = ins.args
    if a.get("is_transpose") or getattr(a.get("perf_mode"), "value", a.get("perf_mode")) == \
            "double_row" or a["dst"].dtype != "float32":
        return False
    return isinstance(facts.mm_add.get(ins.index), bool)


def find_groups(program, facts) -> dict:
    """{index of the last member: [member indices]} for every eligible nc_matmul."""
    from .analysis import all_views
    open_: dict = {}        # dst storage id -> (dst key, [members], {operand storage ids})
    done: dict = {}

    def close(sid):
        g = open_.pop(sid, None)
        if g is not None:
            done[g[1][-1]] = g[1]

    for idx, ins in enumerate(program.instrs):
        mm = ins.op.name == "nc_matmul" and _eligible(ins, facts)
        if mm:
            dst = ins.args["dst"]
            key = (dst.offset, dst.pattern, dst.dtype)
            reads = {ins.args["stationary"].storage.id, ins.args["moving"].storage.id}
            g = open_.get(dst.storage.id)
            if g is not None and g[0] == key and facts.mm_add[idx] is True:
                g[1].append(idx)
                g[2].update(reads)
            else:
                close(dst.storage.id)
                open_[dst.storage.id] = (key, [idx], reads)
            continue
        touched = {v.storage.id for v in all_views(ins)}
        written = {v.storage.id for v in ins.writes()}
        for sid in [s for s, g in open_.items() if s in touched or g[2] & written]:
            close(sid)
    for sid in list(open_):
        close(sid)
    return done


class _Scratch:
    """fp32 staging buffers shared by every group of one plan (groups run one at a time)."""

    def __init__(self):
        self.bufs = {}

    def get(self, role, shape):
        b = self.bufs.get((role, shape))
        if b is None:
            b = self.bufs[(role, shape)] = np.empty(shape, F32)
        return b


def fused_matmul(members, instrs, ctx):
    """One closure running the whole group as ``stack(stationary).T @ stack(moving)`` in fp32."""
    scratch = ctx.plan.__dict__.setdefault("mm_scratch", _Scratch())
    first = instrs[members[0]].args
    dst = first["dst"]
    M, N = first["stationary"].free_size, first["moving"].free_size
    parts, k0 = [], 0
    for m in members:
        st, mv = instrs[m].args["stationary"], instrs[m].args["moving"]
        K = st.shape[0]
        parts.append((ctx.get(st), ctx.get(mv), k0, k0 + K, K))
        k0 += K
    Ktot = k0
    add = ctx.mm_add[members[0]]
    D, shape = ctx.get(dst), dst.shape
    store = storer(dst.dtype, ctx.precise)
    A, B, R = scratch.get("A", (Ktot, M)), scratch.get("B", (Ktot, N)), scratch.get("R", (M, N))

    def run():
        for S, V, a, b, K in parts:
            np.copyto(A[a:b], S().reshape(K, M), casting="unsafe")
            np.copyto(B[a:b], V().reshape(K, N), casting="unsafe")
        np.matmul(A.T, B, out=R)
        if add:
            np.add(np.asarray(D(), F32).reshape(M, N), R, out=R)
        store(D(), R.reshape(shape))
    return run
