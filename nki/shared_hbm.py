"""LNC=2 tracing: both cores run the kernel body; shared_hbm tensors are linked across the cores by name (unnamed ones by allocation order)."""
from __future__ import annotations

from device import dtypes
from device.errors import UserKernelError, user_loc
from device.program import Program
from device.tensor import HBM, SHARED_HBM, View


class SharedHbmAlloc:
    """``program.alloc`` for core ``pid`` of an LNC=2 trace.

    Both cores run the same kernel body. A kernel-level ``nl.ndarray(..., nl.shared_hbm)`` is
    linked across the cores the way the NKI docs (``nki.language.ndarray``) say the compiler links
    them: by NAME. "shared_hbm tensors will point to the same underlying memory as long as they have
    the same name, even if the tensors appear in different control flow" -- so tensors a core
    names per block (``name=f"out_block_{block_idx}"``) are distinct tensors when the cores own
    different blocks. The k-th tensor of one name on a core is the k-th of that name on the other.
    Unnamed tensors (kernel outputs are usually unnamed) keep the order rule: core k's n-th unnamed
    shared_hbm allocation is core 0's n-th. SBUF, PSUM and private HBM are allocated per core.

    ``named`` is the name table the cores share; ``None`` (the legacy SPMD grid) links every
    shared_hbm tensor by order only.
    """

    def __init__(self, program, pid, shared, named=None):
        self.orig = Program.alloc.__get__(program)
        self.pid, self.shared, self.count = pid, shared, 0
        self.named, self.seen = named, {}

    def __call__(self, shape, dtype, buffer, *args, **kwargs):
        from device.tensor import as_buffer
        if as_buffer(buffer) != SHARED_HBM or kwargs.get("kind", "tile") != "tile":
            return self.orig(shape, dtype, buffer, *args, **kwargs)
        want = (tuple(int(d) for d in shape), dtypes.normalize(dtype))
        name = kwargs.get("name") or (args[0] if args else "")
        if self.named is not None and name:
            k = self.seen.get(name, 0)
            self.seen[name] = k + 1
            hit = self.named.get((name, k))
            if hit is None:
                v = self.orig(shape, dtype, buffer, *args, **kwargs)
                self.named[(name, k)] = (self.pid, v)
                return v
            owner, v = hit
            if (v.shape, v.dtype) != want:
                raise UserKernelError(
                    f"under LNC=2 shared_hbm tensors of one name are one tensor: core {self.pid} "
                    f"allocated '{name}' as {list(want[0])} {want[1]} but core {owner} allocated it "
                    f"as {list(v.shape)} {v.dtype}", loc=user_loc())
            return View.whole(v.storage)
        n, self.count = self.count, self.count + 1
        if self.pid == 0:
            v = self.orig(shape, dtype, buffer, *args, **kwargs)
            self.shared.append(v)
            return v
        if n >= len(self.shared) or (self.shared[n].shape, self.shared[n].dtype) != want:
            raise UserKernelError(
                f"under LNC=2 both cores must allocate the same shared_hbm tensors in the same "
                f"order; core {self.pid} allocated shared_hbm #{n} {list(want[0])} {want[1]} that "
                f"core 0 did not", loc=user_loc())
        return View.whole(self.shared[n].storage)


def check_same_returns(name, outs_all):
    """The returns of the cores of an LNC=2 trace: the same shared_hbm tensors, or per-core
    private HBM tensors of one shape and dtype (``nl.hbm`` outputs, accepted since NKI 2.29:
    the nki-library's linear_scan returns them at LNC=2).

    Returns, per private position, ``(index, [view of core 1, ...])``: the run compares those
    copies with core 0's (:func:`check_private_copies`), since one output cannot hold two answers.
    """
    def items(r):
        return list(r) if isinstance(r, tuple) else ([] if r is None else [r])
    first, copies = items(outs_all[0]), []
    for pid, r in enumerate(outs_all[1:], start=1):
        got = items(r)
        if len(got) != len(first):
            raise UserKernelError(f"{name}: under LNC=2 every core must return the same number "
                                  f"of tensors; core 0 returned {len(first)}, core {pid} "
                                  f"{len(got)}", loc=None)
        for i, (a, b) in enumerate(zip(first, got)):
            if not (isinstance(a, View) and isinstance(b, View)):
                if a is not b:
                    raise UserKernelError(f"{name}: under LNC=2 every core must return the same "
                                          f"shared_hbm tensors (output #{i})", loc=None)
                continue
            if a.storage.id == b.storage.id:
                continue
            private = all(v.storage.buffer == HBM and v.storage.kind == "tile" for v in (a, b))
            if not private or (a.shape, a.dtype) != (b.shape, b.dtype):
                raise UserKernelError(
                    f"{name}: under LNC=2 every core must return the same shared_hbm tensors; "
                    f"output #{i} is {a.storage.name} on core 0 but {b.storage.name} on core "
                    f"{pid}", loc=None)
            while len(copies) <= i:
                copies.append(None)
            copies[i] = (copies[i] or []) + [b]
    return [(i, vs) for i, vs in enumerate(copies) if vs]


def check_private_copies(name, mem, views, copies):
    """After an LNC=2 run: each core's copy of a private-HBM output must hold the same bytes,
    or the single output the caller receives would silently drop one core's work."""
    import numpy as np
    for i, others in copies:
        mine = mem.array(views[i])
        for pid, v in enumerate(others, start=1):
            theirs = mem.array(v)
            if not np.array_equal(mine.view(np.uint8), theirs.view(np.uint8)):
                raise UserKernelError(
                    f"{name}: output #{i} ({views[i].storage.name}) is in private HBM (nl.hbm) "
                    f"and the two LNC=2 cores wrote different values into their copies (core 0 "
                    f"and core {pid}); one output cannot hold both: allocate it with "
                    f"buffer=nl.shared_hbm and have each core write its own part", loc=None)
