"""Operand rules shared by the instruction table (SPEC 4.2). Each raises HardwareRuleError."""
from __future__ import annotations

import math

import numpy as np

from .. import dtypes
from ..errors import HardwareRuleError, UserKernelError
from ..tensor import View

_ENGINE_NAMES = {"PE": "TensorE", "ACT": "ScalarE", "DVE": "VectorE", "POOL": "GpSimd",
                 "SP": "Sync", "DMA": "DMA"}


def fail(i, rule, msg, operand=None, value=None, limit=None):
    raise HardwareRuleError(rule, f"{i.op.name} {msg}", operand=operand, value=value, limit=limit,
                            loc=i.loc)


def view_arg(i, name, required=True) -> View | None:
    v = i.args.get(name)
    if v is None:
        if required:
            raise UserKernelError(f"{i.op.name}: missing required operand '{name}'", loc=i.loc)
        return None
    if not isinstance(v, View):
        raise UserKernelError(f"{i.op.name}: operand '{name}' must be a tensor, got "
                              f"{type(v).__name__} {v!r}", loc=i.loc)
    return v


def check_alloc(st, arch):
    """Allocation-time rules: partition count, PSUM tile width, PSUM address bank alignment,
    HBM capacity."""
    if not st.buffer.on_chip:
        from ..limits import check_hbm_tensor
        check_hbm_tensor(st.name, st.size * dtypes.itemsize(st.dtype), arch, st.loc)
    if st.buffer.on_chip:
        if not st.shape:
            raise HardwareRuleError("tensor-rank", f"on-chip tensor {st.name} needs a partition "
                                    f"dimension; got a scalar shape", operand=st.name, value=st.shape,
                                    limit="rank >= 1", loc=st.loc)
        if st.shape[0] > arch.partitions:
            raise HardwareRuleError(
                "partition-limit", f"tensor {st.name} of shape {list(st.shape)} in {st.buffer.name} "
                f"has {st.shape[0]} partitions (dimension 0); the limit is {arch.partitions}. "
                f"Tile the partition dimension", operand=st.name, value=st.shape[0],
                limit=arch.partitions, loc=st.loc)
        if st.address is not None:
            _check_address(st, arch)
        if st.buffer.kind == "psum" and st.address is not None and st.address[1] % arch.psum_bank_bytes:
            raise HardwareRuleError("psum-address-align", f"PSUM tensor {st.name} address "
                                    f"{st.address[1]} does not start on a {arch.psum_bank_bytes}-byte "
                                    f"bank boundary", operand=st.name, value=st.address[1],
                                    limit=arch.psum_bank_bytes, loc=st.loc)
        psum = st.buffer.kind == "psum"
        cap = arch.psum_bytes_per_partition if psum else arch.sbuf_usable_bytes_per_partition
        if st.bytes_per_partition > cap:
            raise HardwareRuleError(
                "capacity", f"tensor {st.name} needs {st.bytes_per_partition} bytes per partition in "
                f"{st.buffer.name}; the {arch.name} {st.buffer.name} holds {cap}"
                + ("" if psum else f" ({arch.sbuf_account()})"), operand=st.name,
                value=st.bytes_per_partition, limit=cap, loc=st.loc)


def _check_address(st, arch):
    """A user-placed tile (``address=(partition, byte)``) must lie inside its buffer."""
    p0, b0 = st.address
    if p0 < 0 or p0 + st.shape[0] > arch.partitions:
        raise HardwareRuleError(
            "partition-limit", f"tensor {st.name} placed at partition {p0} with {st.shape[0]} "
            f"partitions reaches partition {p0 + st.shape[0] - 1}; the {st.buffer.name} has "
            f"partitions 0-{arch.partitions - 1}", operand=st.name, value=p0 + st.shape[0],
            limit=arch.partitions, loc=st.loc)
    cap = (arch.psum_bytes_per_partition if st.buffer.kind == "psum"
           else arch.sbuf_usable_bytes_per_partition)
    if b0 < 0 or b0 + st.bytes_per_partition > cap:
        raise HardwareRuleError(
            "address-range", f"tensor {st.name} placed at byte {b0} needs bytes [{b0}, "
            f"{b0 + st.bytes_per_partition}) per partition; the {arch.name} {st.buffer.name} has "
            f"{cap} usable bytes per partition"
            + ("" if st.buffer.kind == "psum" else f" ({arch.sbuf_account()})"), operand=st.name,
            value=b0 + st.bytes_per_partition, limit=cap, loc=st.loc)


def check_in_bounds(i):
    """Every tensor operand stays inside its tensor. Slices are checked when taken; a raw ``.ap``
    pattern is only a descriptor until an instruction uses it, so it is checked here, naming the
    operand, its pattern and the tensor's size (run-time offsets are checked when they resolve)."""
    for name, v in i.args.items():
        if not isinstance(v, View) or v.dyn is not None or v.size == 0:
            continue
        lo, hi = v.element_span()
        st = v.storage
        total = st.size * dtypes.itemsize(st.dtype) // dtypes.itemsize(v.dtype)
        if lo < 0 or hi >= total:
            fail(i, "access-out-of-bound", f"operand '{name}' (pattern {[list(p) for p in v.pattern]} "
                 f"offset {v.offset}) reaches elements [{lo}, {hi}] of {st.name}, which has "
                 f"{total}", name, (lo, hi), total)


# Compute engines reach SBUF/PSUM through 32-partition quadrants, so an access's start partition
# depends on how many partitions it spans (trainium_inferentia2_arch.rst, "start_partition").
# DMA queues address partitions individually and are exempt.
def check_partitions(i, arch, name, v: View):
    if not v.on_chip:
        return
    start, n = v.partition_range()
    if n > arch.partitions:
        fail(i, "partition-limit", f"operand '{name}' ({v.storage.name}) has {n} partitions; the "
             f"limit is {arch.partitions}", name, n, arch.partitions)
    if start + n > arch.partitions:
        fail(i, "partition-limit", f"operand '{name}' reaches partition {start + n - 1}; the limit is "
             f"{arch.partitions - 1}", name, start + n, arch.partitions)
    if i.engine == "DMA":
        return
    if n > 64 and start != 0:
        fail(i, "partition-start", f"operand '{name}' uses {n} partitions starting at {start}; more "
             f"than 64 partitions must start at partition 0", name, start, 0)
    if 32 < n <= 64 and start not in (0, 64):
        fail(i, "partition-start", f"operand '{name}' uses {n} partitions starting at {start}; 33-64 "
             f"partitions must start at partition 0 or 64", name, start, "0 or 64")
    if n <= 32 and start % 32:
        fail(i, "partition-start", f"operand '{name}' uses {n} partitions starting at {start}; up "
             f"to 32 partitions must start at partition 0, 32, 64 or 96", name, start, "0/32/64/96")


def check_free_size(i, arch, name, v: View):
    if not v.on_chip:
        return
    lim = arch.psum_max_free_elems if v.buffer.kind == "psum" else arch.sbuf_max_free_elems
    # a stride-0 (broadcast) axis re-reads the same elements: count the distinct ones (nki-library
    # layernorm_tkg broadcasts a (P, 320) PSUM mean over 24 columns, 7680 reads of 320 elements)
    n = math.prod(c for s, c in v.pattern[1:] if s != 0) if v.buffer.kind == "psum" else v.free_size
    if n > lim:
        fail(i, "free-size-limit", f"operand '{name}' has {n} elements per partition in "
             f"{v.buffer.name}; the limit is {lim}", name, n, lim)


def check_buffer(i, name, v: View, allowed):
    if v.buffer.kind not in allowed:
        where = " or ".join(a.upper() for a in allowed)
        fail(i, "buffer", f"operand '{name}' ({v.storage.name}) is in {v.buffer.name.upper()}; "
             f"{_ENGINE_NAMES.get(i.engine, i.engine)} {i.op.name} needs it in {where}",
             name, v.buffer.name, where)


def check_onchip_operand(i, arch, name, v: View, allowed=("sbuf", "psum")):
    check_buffer(i, name, v, allowed)
    if i.engine == "POOL" and v.buffer.kind == "psum":
        fail(i, "buffer", f"operand '{name}' ({v.storage.name}) is in PSUM; GpSimd {i.op.name} "
             f"cannot access PSUM: use the Vector or Scalar engine, or copy it to SBUF first",
             name, "psum", "sbuf")
    check_partitions(i, arch, name, v)
    check_free_size(i, arch, name, v)


def check_same_partitions(i, names_views):
    (n0, v0), rest = names_views[0], names_views[1:]
    for n, v in rest:
        if v.shape[0] != v0.shape[0]:
            fail(i, "partition-mismatch", f"operands '{n0}' and '{n}' have different partition "
                 f"counts: {v0.shape[0]} vs {v.shape[0]}", n, v.shape[0], v0.shape[0])


def check_same_free(i, names_views):
    (n0, v0), rest = names_views[0], names_views[1:]
    for n, v in rest:
        if v.free_size != v0.free_size or v.shape[0] != v0.shape[0]:
            fail(i, "shape-mismatch", f"operand '{n}' has shape {list(v.shape)} but '{n0}' has "
                 f"{list(v0.shape)}; element-wise operands need equal partitions and elements per "
                 f"partition", n, list(v.shape), list(v0.shape))


def check_not_both_psum(i, a, b):
    va, vb = i.args.get(a), i.args.get(b)
    if isinstance(va, View) and isinstance(vb, View) and va.buffer.kind == "psum" == vb.buffer.kind:
        fail(i, "psum-two-inputs", f"operands '{a}' and '{b}' are both in PSUM; at most one input "
             f"may come from PSUM", b, "psum", "one PSUM input")


def check_dtype(i, name, v: View, allowed, why=""):
    if v.dtype not in allowed:
        fail(i, "dtype", f"operand '{name}' has dtype {v.dtype}; {why or 'allowed'}: "
             f"{', '.join(sorted(allowed))}", name, v.dtype, sorted(allowed))


def scalar_or_column(i, arch, name, required=True):
    """An ISA scalar operand: a Python number or a (P,1) on-chip tile."""
    x = i.args.get(name)
    if x is None:
        if required:
            raise UserKernelError(f"{i.op.name}: missing operand '{name}'", loc=i.loc)
        return
    if isinstance(x, View):
        check_onchip_operand(i, arch, name, x)
        if x.free_size != 1:
            fail(i, "scalar-operand", f"operand '{name}' must be a scalar or a (P, 1) tile; got "
                 f"shape {list(x.shape)}", name, list(x.shape), "(P, 1)")
        return
    if not isinstance(x, (int, float, np.integer, np.floating, bool)):
        raise UserKernelError(f"{i.op.name}: operand '{name}' must be a number or a (P, 1) tile, "
                              f"got {type(x).__name__}", loc=i.loc)


def read_scalar(mem, i, name, P):
    """Value of a scalar operand as an fp32 array broadcastable over (P, F)."""
    x = i.args.get(name)
    if isinstance(x, View):
        return mem.read(x, i.loc).astype(np.float32).reshape(x.shape[0], 1)
    return np.float32(x)


def read2d(mem, i, v: View, dtype=np.float32):
    """Read an operand as (P, F) values (fp32 for arithmetic; raw for bit ops)."""
    a = mem.read(v, i.loc)
    a = a.reshape(v.shape[0], -1) if v.on_chip else a.reshape(1, -1)
    return a.astype(dtype) if dtype is not None else a


def write2d(mem, v: View, vals):
    mem.write(v, np.asarray(vals).reshape(v.shape))


def is_int(v: View) -> bool:
    return v.dtype in dtypes.INTS


PRIORITY_LEVELS = (0, 3)      # DMA class-of-service levels, 0 the highest (NC-v4 only)


def check_priority(i, arch):
    """``priority=`` of a DMA: a class-of-service hint that changes no byte, NeuronCore-v4 only,
    an int level from 0 (highest) to 3 (nki-spec: ``priority`` 0-3 is v4 only)."""
    prio = i.args.get("priority")
    if prio is None:
        return
    lo, hi = PRIORITY_LEVELS
    if isinstance(prio, bool) or not isinstance(prio, (int, np.integer)) or not lo <= prio <= hi:
        fail(i, "priority", f"priority={prio!r} is not a DMA priority level: use an int from "
             f"{lo} (highest) to {hi}", "priority", prio, f"int {lo}..{hi}")
    if arch.gen < 4:
        fail(i, "generation", f"priority={prio} needs NeuronCore-v4; target "
             f"{arch.name} is NeuronCore-v{arch.gen}", "priority", prio, "gen >= 4")
