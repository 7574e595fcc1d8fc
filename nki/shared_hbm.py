"""LNC=2 tracing: both cores run the kernel body, and shared_hbm tensors are one tensor for both."""
from __future__ import annotations

from device import dtypes
from device.errors import UserKernelError, user_loc
from device.program import Program
from device.tensor import SHARED_HBM, View


class SharedHbmAlloc:
    """``program.alloc`` for core ``pid`` of an LNC=2 trace.

    Both cores run the same kernel body, and a kernel-level ``nl.ndarray(..., nl.shared_hbm)`` is ONE
    tensor seen by both: core k's n-th shared_hbm allocation is core 0's n-th. Everything else
    (SBUF, PSUM, private HBM) is allocated per core.
    """

    def __init__(self, program, pid, shared):
        self.orig = Program.alloc.__get__(program)
        self.pid, self.shared, self.count = pid, shared, 0

    def __call__(self, shape, dtype, buffer, *args, **kwargs):
        from device.tensor import as_buffer
        if as_buffer(buffer) != SHARED_HBM or kwargs.get("kind", "tile") != "tile":
            return self.orig(shape, dtype, buffer, *args, **kwargs)
        n, self.count = self.count, self.count + 1
        if self.pid == 0:
            v = self.orig(shape, dtype, buffer, *args, **kwargs)
            self.shared.append(v)
            return v
        want = (tuple(int(d) for d in shape), dtypes.normalize(dtype))
        if n >= len(self.shared) or (self.shared[n].shape, self.shared[n].dtype) != want:
            raise UserKernelError(
                f"under LNC=2 both cores must allocate the same shared_hbm tensors in the same "
                f"order; core {self.pid} allocated shared_hbm #{n} {list(want[0])} {want[1]} that "
                f"core 0 did not", loc=user_loc())
        return View.whole(self.shared[n].storage)


def check_same_returns(name, outs_all):
    def ids(r):
        rs = r if isinstance(r, tuple) else (() if r is None else (r,))
        return [x.storage.id if isinstance(x, View) else id(x) for x in rs]
    if any(ids(r) != ids(outs_all[0]) for r in outs_all[1:]):
        raise UserKernelError(f"{name}: under LNC=2 every core must return the same shared_hbm "
                              f"tensors", loc=None)
