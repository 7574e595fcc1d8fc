"""Instructions between the two NeuronCores of an LNC=2 kernel: sendrecv, core_barrier (SPEC 1.5, 3.2).

Both cores' instruction streams live in one program (each instruction carries ``_core``); the
executor runs them in lock-step, passing over a core whose instruction must wait for the other
(device/executor.py). An instruction waits by raising ``Blocked`` from ``run`` after
recording what it has already done, so that running it again later resumes it:

* ``sendrecv`` posts a snapshot of its ``src`` into the mailbox (from, to, pipe_id) once, then
  takes the oldest message addressed to it from ``recv_from_rank`` on the same pipe; if there is
  none yet it waits.
* ``core_barrier`` counts the barriers each core has reached; a core passes its n-th barrier once
  every core in ``cores`` has reached its n-th.

The cross-core state (``Exchange``) lives on the ``Memory`` of one run, like the engines'
accumulator registers, so a fresh run starts with empty mailboxes.

    sendrecv[DMA] src=sbuf.a{..} dst=sbuf.b{..} send_to_rank=1 recv_from_rank=1 pipe_id=0
    core_barrier[POOL] data=shared_hbm.out{..} cores=(0, 1)
"""
from __future__ import annotations

from collections import deque

from ..errors import HardwareRuleError, UserKernelError
from ..tensor import SHARED_HBM
from . import defop
from .costs import dma_cost, stream_cost
from .rules import check_buffer, check_partitions, check_free_size, fail, view_arg

# gpsimd_dma moves at most this many bytes per partition, per element size (SPEC 3.2)
GPSIMD_DMA_LIMIT = {4: 1024, 2: 512, 1: 256}


class Blocked(Exception):
    """Raised by ``run`` when the instruction must wait for another core (not an error)."""

    def __init__(self, ins, reason: str):
        super().__init__(reason)
        self.ins, self.reason = ins, reason


class Exchange:
    """What the cores of one run share besides HBM: sendrecv mailboxes and barrier counts."""

    def __init__(self):
        self.mail: dict = {}        # (from core, to core, pipe_id) -> deque of (instr, data)
        self.pending: dict = {}     # core -> the instruction whose first half is already done
        self.arrivals: dict = {}    # core -> number of core_barriers it has reached


def exchange(mem) -> Exchange:
    ex = mem.__dict__.get("exchange")
    if ex is None:
        ex = mem.exchange = Exchange()
    return ex


def core_of(i) -> int:
    return int(i.args.get("_core", 0))


def _check_generation(i, arch):
    if arch.gen < 3:
        fail(i, "generation", f"needs NeuronCore-v3 or later (trn2, trn3); target {arch.name} is "
             f"NeuronCore-v{arch.gen}, which has no LNC=2 core pairs", "target", arch.name,
             "NeuronCore-v3+")


def _check_rank(i, name, lnc):
    r = i.args.get(name)
    if isinstance(r, bool) or not isinstance(r, int):
        raise UserKernelError(f"{i.op.name}: {name} must be a compile-time int core index, got "
                              f"{r!r}", loc=i.loc)
    if not 0 <= r < max(lnc, 2):
        fail(i, "core-rank", f"{name}={r} is not a core of the LNC pair (0 or 1)", name, r, "0 or 1")
    if r >= lnc:
        fail(i, "lnc", f"{name}={r} names core {r} but this kernel runs with LNC={lnc}: launch it "
             f"as kernel[2](...) so that it has two cores", name, r, f"< {lnc}")


@defop("sendrecv", engine="DMA", outputs=("dst",), inputs=("src",), moves=True)
class SendRecv:
    """Send ``src`` to core ``send_to_rank``'s dst; receive core ``recv_from_rank``'s src into dst."""

    def check(i, arch):
        _check_generation(i, arch)
        src, dst = view_arg(i, "src"), view_arg(i, "dst")
        for n, v in (("src", src), ("dst", dst)):
            check_buffer(i, n, v, ("sbuf",))
            check_partitions(i, arch, n, v)
            check_free_size(i, arch, n, v)
        if src.dtype != dst.dtype:
            fail(i, "dtype", f"src is {src.dtype} but dst is {dst.dtype}; sendrecv moves raw data "
                 f"and needs equal dtypes", "dst", dst.dtype, src.dtype)
        if src.shape[0] != dst.shape[0] or src.free_size != dst.free_size:
            fail(i, "shape-mismatch", f"src has shape {list(src.shape)} but dst has "
                 f"{list(dst.shape)}; both need the same partitions and elements per partition",
                 "dst", list(dst.shape), list(src.shape))
        lnc = int(i.args.get("_lnc", 2))
        for n in ("send_to_rank", "recv_from_rank"):
            _check_rank(i, n, lnc)
        if i.args.get("dma_engine", "dma") == "gpsimd_dma":
            lim = GPSIMD_DMA_LIMIT.get(src.itemsize, 1024)
            nbytes = src.free_size * src.itemsize
            if nbytes > lim:
                fail(i, "gpsimd-dma-size", f"moves {nbytes} bytes per partition with "
                     f"dma_engine=gpsimd_dma; the limit for {8 * src.itemsize}-bit data is {lim} "
                     f"bytes: use dma_engine=nisa.dma_engine.dma", "src", nbytes, lim)

    def pick_engine(i, arch):
        return "POOL" if i.args.get("dma_engine") == "gpsimd_dma" else "DMA"

    def run(i, mem):
        ex, me = exchange(mem), core_of(i)
        to, frm, pipe = i.args["send_to_rank"], i.args["recv_from_rank"], i.args["pipe_id"]
        if ex.pending.get(me) is not i:             # first attempt: post our half once
            bits = mem.carried(i.args["src"], i.args["dst"])     # both SBUF (check)
            data = mem.read(i.args["src"], i.loc, warn=bits is None).copy()
            ex.mail.setdefault((me, to, pipe), deque()).append((i, data, bits))
            ex.pending[me] = i
        q = ex.mail.get((frm, me, pipe))
        if not q:
            raise Blocked(i, f"waits for core {frm} to reach a sendrecv on pipe {pipe}")
        sender, data, bits = q.popleft()
        ex.pending.pop(me, None)
        dst = i.args["dst"]
        s_src = sender.args["src"]
        if s_src.dtype != dst.dtype or data.size != dst.size or s_src.shape[0] != dst.shape[0]:
            raise HardwareRuleError(
                "sendrecv-mismatch", f"sendrecv on core {me} receives {s_src.dtype}"
                f"{list(s_src.shape)} from core {frm} (sent at {sender.loc}) into dst "
                f"{dst.dtype}{list(dst.shape)}; the two sides of a sendrecv need the same dtype, "
                f"partitions and elements per partition", operand="dst",
                value=f"{s_src.dtype}{list(s_src.shape)}", limit=f"{dst.dtype}{list(dst.shape)}",
                loc=i.loc)
        mem.write(dst, data.reshape(dst.shape), rounded=True, written=bits)

    def cost(i, arch):
        if i.engine == "POOL":
            src = i.args["src"]
            return stream_cost(i, arch, src.free_size, src)
        # the transfer out and the transfer in run on the DMA queues: price both directions
        return dma_cost(arch, i.args["dst"], i.args["src"], factor=2.0)


@defop("core_barrier", engine="POOL", outputs=(), inputs=("data",))
class CoreBarrier:
    """Every core in ``cores`` waits here until all of them have reached this barrier."""

    def check(i, arch):
        _check_generation(i, arch)
        data = view_arg(i, "data")
        cores = i.args.get("cores")
        lnc = int(i.args.get("_lnc", 2))
        if not isinstance(cores, tuple) or not cores or len(set(cores)) != len(cores) or any(
                isinstance(c, bool) or not isinstance(c, int) for c in cores):
            raise UserKernelError(f"core_barrier: cores must be a tuple of distinct core indices "
                                  f"such as (0, 1), got {cores!r}", loc=i.loc)
        bad = [c for c in cores if not 0 <= c < lnc]
        if bad:
            fail(i, "lnc", f"cores={cores} names core {bad[0]} but this kernel runs with LNC={lnc}"
                 + (": launch it as kernel[2](...)" if lnc == 1 else ""), "cores", cores,
                 tuple(range(lnc)))
        me = i.args.get("_rank")
        if me is not None and me not in cores:
            fail(i, "core-rank", f"core {me} executes a barrier over cores={cores} that does not "
                 f"include it", "cores", cores, f"contains {me}")
        # The documented use is a shared HBM tensor both cores write; the NKI library also hands
        # the barrier an SBUF tile (moe_cte's block index), which orders the cores just the same.
        # Memory only one core can see (private HBM, PSUM) cannot be what the cores agree on.
        if data.buffer != SHARED_HBM and data.buffer.kind != "sbuf":
            fail(i, "buffer", f"operand 'data' ({data.storage.name}) is in {data.buffer.name}; "
                 f"core_barrier synchronises on a tensor in nl.shared_hbm (or an SBUF tile)",
                 "data", data.buffer.name, "shared_hbm or sbuf")

    def run(i, mem):
        cores = i.args["cores"]
        if len(cores) < 2:
            return
        ex, me = exchange(mem), core_of(i)
        if ex.pending.get(me) is not i:             # first attempt: announce our arrival once
            ex.arrivals[me] = ex.arrivals.get(me, 0) + 1
            ex.pending[me] = i
        n = ex.arrivals[me]
        late = [c for c in cores if c != me and ex.arrivals.get(c, 0) < n]
        if late:
            raise Blocked(i, f"waits for core {late[0]} to reach core_barrier #{n}")
        ex.pending.pop(me, None)

    def cost(i, arch):
        # a remote semaphore write and the local semaphore wait
        return 2 * arch.sem_latency_ns
