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

import bisect

import numpy as np

from ..isa.pe import products_sum
from .analysis import strided
from .kernels import storer

F32 = np.dtype(np.float32)
_F32_MAX = float(np.finfo(np.float32).max)


def _eligible(ins, idx, facts) -> bool:
    a = ins.args
    if a.get("is_transpose") or getattr(a.get("perf_mode"), "value", a.get("perf_mode")) == \
            "double_row" or a["dst"].dtype != "float32":
        return False
    return isinstance(facts.mm_add.get(idx), bool)


def find_groups(program, facts) -> dict:
    """{index of the last member: [member indices]} for every eligible nc_matmul."""
    open_: dict = {}        # dst storage id -> (dst key, [members], {operand storage ids})
    done: dict = {}

    def close(sid):
        g = open_.pop(sid, None)
        if g is not None:
            done[g[1][-1]] = g[1]

    for idx, ins in enumerate(program.instrs):
        mm = ins.op.name == "nc_matmul" and _eligible(ins, idx, facts)
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
        if not open_:
            continue
        written = facts.writes[idx]
        touched = {v.storage.id for v in facts.views[idx]}
        for sid in [s for s, g in open_.items() if s in touched or g[2] & written]:
            close(sid)
    for sid in list(open_):
        close(sid)
    return done


class Scratch:
    """fp32 staging buffers by (role, shape), one set per user of a plan: its PSUM groups run one
    at a time, and so do its batches (batches.py keeps a set of its own)."""

    def __init__(self):
        self.bufs = {}

    def get(self, role, shape):
        b = self.bufs.get((role, shape))
        if b is None:
            b = self.bufs[(role, shape)] = np.empty(shape, F32)
        return b


def _operands(members, instrs):
    for m in members:
        yield instrs[m].args["stationary"]
        yield instrs[m].args["moving"]


def shadowed_storages(groups, instrs, mem) -> set:
    """Storages read by fused groups in a low-precision dtype, always through their own dtype:
    they get an fp32 image the size of the tile, converted once after each write, so a tile
    reused by many matmuls (a stationary block, a moving strip) is converted once, not per use."""
    out, mixed = set(), set()
    for members in groups.values():
        for v in _operands(members, instrs):
            st = v.storage
            if v.dtype != st.dtype:
                mixed.add(st.id)
            elif mem.storage_dtype(st.dtype) != F32:
                out.add(st.id)
    return out - mixed




def fused_matmul(members, instrs, ctx):
    """One closure running the group as ``sum_k stationary_k.T @ moving_k`` in fp32 BLAS calls.

    Operands are read as fp32: tiles that are fp32 already in place, low-precision tiles through
    their fp32 image (``shadowed_storages``), refreshed when the tile was written since."""
    plan = ctx.plan
    scratch = plan.__dict__.setdefault("mm_scratch", Scratch())
    first = instrs[members[0]].args
    dst = first["dst"]
    M, N = first["stationary"].free_size, first["moving"].free_size
    end = members[-1]
    refresh, seen = [], set()

    views = plan.__dict__.setdefault("mm_views", {})

    def operand(v, F):
        st = v.storage
        shadow = plan.shadows.get(st.id)
        if shadow is not None and st.id not in seen:    # refresh the fp32 image if written since
            seen.add(st.id)
            w = plan.writes_at.get(st.id, ())
            k = bisect.bisect_left(w, end)
            refresh.append((st.id, w[k - 1] if k else -1, plan.onchip[st.id], shadow))
        key = (st.id, v.offset, v.pattern, v.dtype, F)
        got = views.get(key)
        if got is None:
            got = views[key] = _operand(v, F, shadow)
        return got

    def _operand(v, F, shadow):
        if shadow is None:
            g = ctx.get(v)
            return lambda: np.asarray(g(), F32).reshape(v.shape[0], F)
        x = strided(shadow, v)                    # same element strides as the storage
        try:
            x2 = x.reshape((v.shape[0], F), copy=False)
            return lambda: x2
        except ValueError:                        # not expressible as a view: copy per run
            return lambda: x.reshape(v.shape[0], F)

    pairs = [(operand(instrs[m].args["stationary"], M), operand(instrs[m].args["moving"], N))
             for m in members]
    add = ctx.mm_add[members[0]]
    D, shape = ctx.get(dst), dst.shape
    store = storer(dst.dtype, ctx.precise)
    R, T = scratch.get("R", (M, N)), scratch.get("T", (M, N))

    def run():
        version = plan.shadow_version
        for sid, w, src, shadow in refresh:
            if version.get(sid) != w:
                np.copyto(shadow, src, casting="unsafe")
                version[sid] = w
        ops = [(S(), V()) for S, V in pairs]
        if any(may_overflow(a, b) for a, b in ops):      # the reference's rounding points
            acc = np.asarray(D(), F32).reshape(M, N).copy() if add else None
            for a, b in ops:
                p = products_sum(a, b)
                acc = p if acc is None else acc + p
            store(D(), acc.reshape(shape))
            return
        (a, b), rest = ops[0], ops[1:]
        np.matmul(a.T, b, out=R)
        for a, b in rest:
            np.matmul(a.T, b, out=T)
            np.add(R, T, out=R)
        if add:
            np.add(np.asarray(D(), F32).reshape(M, N), R, out=R)
        store(D(), R.reshape(shape))
    return run


def may_overflow(a, b) -> bool:
    """True when a product of ``a`` and ``b`` could exceed fp32 (or a NaN hides the maxima): one
    fp32 BLAS call would then fuse that product into a finite sum (FMA) where the reference's
    product is +-inf, so such a group runs at the reference's rounding points instead."""
    # max/min make no temporary array; NaN and inf pass through them and through the Python
    # float product without a warning, so no errstate (it cost ~10% of a small conv's run)
    m = max(float(a.max(initial=0.0)), -float(a.min(initial=0.0))) * \
        max(float(b.max(initial=0.0)), -float(b.min(initial=0.0)))
    return not m <= _F32_MAX
