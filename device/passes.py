"""Passes over device programs: verification and on-chip capacity / overlap checks.

``verify_program`` re-runs every instruction's operand rules (debug mode) and checks that the live
SBUF and PSUM tiles fit the generation's capacity per partition, that at most ``psum_banks`` PSUM
banks are live at once, and that user-placed tiles (``address=``) never overlap while both are live.
"""
from __future__ import annotations

import math

from .errors import HardwareRuleError
from .program import Program
from .settings import settings


def live_ranges(program: Program):
    """storage id -> (first instruction index, last instruction index) for on-chip storages."""
    rng = {}
    for ins in program.instrs:
        for v in ins.reads() + ins.writes():
            st = v.storage
            if st.buffer.on_chip:
                a = rng.get(st.id)
                rng[st.id] = (ins.index, ins.index) if a is None else (a[0], ins.index)
    return rng


def check_capacity(program: Program):
    arch = program.arch
    by_id = {s.id: s for s in program.storages}
    rng = live_ranges(program)
    events = []
    for sid, (a, b) in rng.items():
        events.append((a, 0, sid))
        events.append((b, 1, sid))
    events.sort()
    use = {"sbuf": 0, "psum": 0}
    banks = 0
    live = set()
    peak = {"sbuf": 0, "psum": 0, "psum_banks": 0}
    for idx, kind, sid in events:
        st = by_id[sid]
        buf = st.buffer.kind
        nbytes = st.bytes_per_partition
        nb = math.ceil(nbytes / arch.psum_bank_bytes) if buf == "psum" else 0
        if kind == 0:
            if st.address is not None:
                _check_overlap(st, live, by_id, arch)
            live.add(sid)
            use[buf] += nbytes
            banks += nb
            peak[buf] = max(peak[buf], use[buf])
            peak["psum_banks"] = max(peak["psum_banks"], banks)
            cap = arch.sbuf_usable_bytes_per_partition if buf == "sbuf" else arch.psum_bytes_per_partition
            if use[buf] > cap:
                raise HardwareRuleError(
                    f"{buf}-capacity", f"live {buf.upper()} tiles need {use[buf]} bytes per partition "
                    f"when {st.name} ({nbytes} B/partition) becomes live at instruction {idx}; the "
                    f"{arch.name} {buf.upper()} has {cap} usable bytes per partition. Reuse or shrink "
                    f"tiles, or declare them inside the loop", operand=st.name, value=use[buf],
                    limit=cap, loc=st.loc)
            if buf == "psum" and banks > arch.psum_banks:
                raise HardwareRuleError(
                    "psum-banks", f"{banks} PSUM banks are live when {st.name} becomes live; the "
                    f"PSUM has {arch.psum_banks} banks of {arch.psum_bank_bytes} bytes", operand=st.name,
                    value=banks, limit=arch.psum_banks, loc=st.loc)
        else:
            live.discard(sid)
            use[buf] -= nbytes
            banks -= nb
    program.attrs["peak"] = peak
    return peak


def _check_overlap(st, live, by_id, arch):
    p0 = st.address[0]
    p1 = p0 + st.shape[0]
    f0 = st.address[1]
    f1 = f0 + st.bytes_per_partition
    for oid in live:
        o = by_id[oid]
        if o.address is None or o.buffer.kind != st.buffer.kind:
            continue
        q0, q1 = o.address[0], o.address[0] + o.shape[0]
        g0, g1 = o.address[1], o.address[1] + o.bytes_per_partition
        if p0 < q1 and q0 < p1 and f0 < g1 and g0 < f1:
            raise HardwareRuleError(
                "overlapping-allocation", f"{st.buffer.name.upper()} tensor {st.name} at partitions "
                f"[{p0},{p1}) bytes [{f0},{f1}) overlaps live tensor {o.name} at partitions "
                f"[{q0},{q1}) bytes [{g0},{g1}) (allocated at {o.loc})", operand=st.name,
                value=(f0, f1), limit=(g0, g1), loc=st.loc)
    # (an address past the end of the buffer is refused at allocation: rules._check_address)


def verify_program(program: Program):
    if settings().debug_verify:
        for ins in program.instrs:
            ins.op.check(ins, program.arch)
    check_capacity(program)
