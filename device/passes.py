"""Passes over device programs: verification, on-chip capacity / overlap checks and the spill plan.

``verify_program`` re-runs every instruction's operand rules (debug mode) and ``check_capacity``
checks the on-chip memories the way the hardware toolchain does (SPEC 4.2 item 10: "the compiler
spills, or the allocator errors"):

* Errors stay where the hardware has them: a PSUM over-subscription (capacity or more than
  ``psum_banks`` live banks), user-placed tiles (``address=``) that overlap while both are live,
  and SBUF tiles that cannot fit even after spilling (the operands of one instruction, plus the
  user-placed tiles, exceed the usable bytes per partition).
* Automatically placed SBUF tiles that over-subscribe the SBUF are *spilled*: a Belady plan
  weighted by cost evicts the live tile whose eviction moves the fewest bytes per byte of space
  freed, relative to how far off its next use is (farthest next use first when costs are equal);
  it is saved to HBM after its last write (unless the HBM copy is still current, or it only holds
  a load of an unchanged input) and reloaded before its next use. The plan is
  ``program.info.spills`` (a list of ``Spill``), priced by device/timing.py as extra DMA
  traffic, and each spilled allocation site gets one ``SpillWarning``. Execution is unaffected
  (spilling preserves the data).

A tile is live from its first to its last use in program order.
"""
from __future__ import annotations

import bisect
import math
import warnings
from dataclasses import dataclass

from .errors import HardwareRuleError, SpillWarning
from .program import Program
from .settings import settings
from .timing_parts import rematerialisable


@dataclass(frozen=True)
class Spill:
    """One eviction of an automatically placed SBUF tile (indices are instruction indices)."""
    storage: object            # the evicted Storage
    last_use: int              # its last use before the eviction (its space is free after this)
    evict_at: int              # the instruction whose tiles needed the space
    save_after: "int | None"   # its last write before the eviction; None = HBM copy still current
                               # (or the tile only holds a load of an unchanged kernel input)
    reload_before: int         # its next use (it is reloaded before this instruction)
    bytes: int                 # bytes of one save or reload transfer (all partitions)

    @property
    def save_bytes(self) -> int:
        return 0 if self.save_after is None else self.bytes


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


def body_live_ranges(program: Program):
    """On-chip storage id -> (first, last) position, with loop bodies laid out in line.

    A device loop (``fori_loop``/``while_loop``) is one instruction whose footprint is its whole
    body, so ``live_ranges`` sees every tile of the body live at once. Here each body instruction
    has its own position: a tile allocated inside the body (``_local``; a fresh one per
    iteration) lives between its uses there, while a tile from outside that the body uses is
    live for the whole loop (its value may be carried from one iteration to the next)."""
    rng: dict = {}
    pos = 0

    def note(sid, a, b):
        old = rng.get(sid)
        rng[sid] = (a, b) if old is None else (min(old[0], a), max(old[1], b))

    def walk(instrs) -> set:
        nonlocal pos
        used = set()
        for ins in instrs:
            body = ins.args.get("body") if isinstance(ins.args.get("body"), list) else None
            if body is None:
                for v in ins.reads() + ins.writes():
                    if v.storage.buffer.on_chip:
                        note(v.storage.id, pos, pos)
                        used.add(v.storage.id)
                pos += 1
                continue
            start = pos
            pos += 1
            inner = walk(body)
            local = ins.args.get("_local") or frozenset()
            for sid in inner - local:
                note(sid, start, pos - 1)
            used |= inner - local
        return used

    walk(program.instrs)
    return rng


def auto_sbuf_capacity(program: Program, peak: dict) -> int:
    """Bytes per partition the compiler hands to automatically placed SBUF tiles before it spills:
    its share (``sbuf_alloc_fraction``) of the usable SBUF minus the peak of the user-placed
    (``address=``) tiles."""
    arch = program.arch
    return int(arch.sbuf_usable_bytes_per_partition * arch.sbuf_alloc_fraction) - \
        peak.get("sbuf_pinned", 0)


def check_capacity(program: Program, warn: bool = True):
    """Check PSUM and user-placed tiles, plan SBUF spills; returns the peak usage per partition.

    Sets ``program.info.peak`` (``sbuf``: peak demand of all SBUF tiles in program order,
    ``sbuf_resident``: after spilling, ``sbuf_pinned``, ``psum``, ``psum_banks``) and
    ``program.info.spills``."""
    arch = program.arch
    by_id = {s.id: s for s in program.storages}
    rng = live_ranges(program)
    # capacity is counted at body positions (the same as instruction indices when there is no
    # device loop); the spill plan, which moves data between instructions, keeps ``rng``
    prng = body_live_ranges(program)
    events = []
    for sid, (a, b) in rng.items():
        a, b = prng.get(sid, (a, b))
        events.append((a, 0, sid))
        events.append((b, 1, sid))
    events.sort()
    use = {"sbuf": 0, "psum": 0, "pinned": 0}
    banks = 0
    live = set()
    peak = {"sbuf": 0, "psum": 0, "psum_banks": 0, "sbuf_pinned": 0}
    usable = arch.sbuf_usable_bytes_per_partition
    for idx, kind, sid in events:
        st = by_id[sid]
        buf = st.buffer.kind
        nbytes = st.bytes_per_partition
        nb = math.ceil(nbytes / arch.psum_bank_bytes) if buf == "psum" else 0
        pinned = nbytes if (buf == "sbuf" and st.address is not None) else 0
        if kind == 0:
            if st.address is not None:
                _check_overlap(st, live, by_id, arch)
            live.add(sid)
            use[buf] += nbytes
            use["pinned"] += pinned
            banks += nb
            peak[buf] = max(peak[buf], use[buf])
            peak["sbuf_pinned"] = max(peak["sbuf_pinned"], use["pinned"])
            peak["psum_banks"] = max(peak["psum_banks"], banks)
            if buf == "psum" and use[buf] > arch.psum_bytes_per_partition:
                raise _capacity_error(arch, "psum", use[buf], st, idx, arch.psum_bytes_per_partition)
            if pinned and use["pinned"] > usable:
                raise _capacity_error(arch, "sbuf", use["pinned"], st, idx, usable, " placed")
            if buf == "psum" and banks > arch.psum_banks:
                raise HardwareRuleError(
                    "psum-banks", f"{banks} PSUM banks are live when {st.name} becomes live; the "
                    f"PSUM has {arch.psum_banks} banks of {arch.psum_bank_bytes} bytes. Live PSUM "
                    f"tiles: {_live_psum(live, by_id, prng)}", operand=st.name,
                    value=banks, limit=arch.psum_banks, loc=st.loc)
        else:
            live.discard(sid)
            use[buf] -= nbytes
            use["pinned"] -= pinned
            banks -= nb
    cap = auto_sbuf_capacity(program, peak)
    spills = []
    peak["sbuf_resident"] = peak["sbuf"]
    if peak["sbuf"] - peak["sbuf_pinned"] > cap:        # cheap test first: most programs fit
        hard = usable - peak["sbuf_pinned"]             # beyond this even spilling cannot help
        spills, peak["sbuf_resident"] = _plan_spills(program, cap, hard, rng, peak["sbuf_pinned"])
        if warn and spills:
            _warn_spills(program, spills, peak["sbuf"], cap)
    program.info.peak = peak
    program.info.spills = spills
    return peak


def spill_plan(program: Program) -> list:
    """The program's spill plan (computing it quietly if tracing did not); [] if it cannot be
    planned (a capacity error, which tracing reports)."""
    if program.info.spills is None:
        try:
            check_capacity(program, warn=False)
        except HardwareRuleError:
            return []
    return (program.info.spills or [])


def _capacity_error(arch, buf, need, st, idx, cap, what=""):
    return HardwareRuleError(
        f"{buf}-capacity", f"live{what} {buf.upper()} tiles need {need} bytes per partition when "
        f"{st.name} ({st.bytes_per_partition} B/partition) becomes live at instruction {idx}; the "
        f"{arch.name} {buf.upper()} has {cap} usable bytes per partition"
        f"{f' ({arch.sbuf_account()})' if buf == 'sbuf' else ''}. Reuse or shrink tiles, "
        f"or declare them inside the loop", operand=st.name, value=need, limit=cap, loc=st.loc)


def _plan_spills(program, cap, hard, rng, pinned):
    """Belady's plan over the automatically placed SBUF tiles, weighted by what an eviction costs
    (``_evict_score``): (spills, resident peak)."""
    remat = rematerialisable(program)
    uses: dict = {}
    tiles: dict = {}
    for ins in program.instrs:
        for v in ins.reads() + ins.writes():
            st = v.storage
            if st.buffer.kind == "sbuf" and st.address is None:
                u = uses.setdefault(st.id, [])
                if not u or u[-1] != ins.index:
                    u.append(ins.index)
                tiles[st.id] = st
    resident: dict = {}                 # sid -> bytes per partition
    used = peak = 0
    dirty: dict = {}                    # sid -> last write index not yet saved to HBM
    last_seen: dict = {}
    evicted: dict = {}                  # sid -> (last use, evict at, save_after, bytes)
    spills = []
    for ins in program.instrs:
        i = ins.index
        ops = {}
        for v in ins.reads() + ins.writes():
            st = v.storage
            if st.buffer.kind == "sbuf" and st.address is None:
                ops[st.id] = st
        if not ops:
            continue
        for sid, st in ops.items():
            if sid not in resident:
                resident[sid] = st.bytes_per_partition
                used += st.bytes_per_partition
                ev = evicted.pop(sid, None)
                if ev is not None:
                    spills.append(Spill(st, ev[0], ev[1], ev[2], i, ev[3]))
        if used > cap:
            cands = []
            for sid in resident:
                if sid not in ops:
                    u = uses[sid]
                    nxt = u[bisect.bisect_right(u, i)]
                    cands.append((_evict_score(tiles[sid], sid in dirty and sid not in remat,
                                               nxt - i), -nxt, sid))
            cands.sort()
            for _, _, sid in cands:
                if used <= cap:
                    break
                st = tiles[sid]
                used -= resident.pop(sid)
                save = dirty.pop(sid, None)
                evicted[sid] = (last_seen[sid], i, None if sid in remat else save,
                                st.bytes_per_partition * st.partitions)
            if used > hard:
                worst = max(ops.values(), key=lambda s: s.bytes_per_partition)
                raise HardwareRuleError(
                    "sbuf-capacity", f"instruction {i} ({ins.op.name}) needs {used + pinned} bytes "
                    f"per partition of SBUF for its own operands (largest: {worst.name}, "
                    f"{worst.bytes_per_partition} B/partition) plus user-placed tiles; the "
                    f"{program.arch.name} SBUF has {hard + pinned} usable bytes per partition, so "
                    f"nothing can be spilled to make room. Split the instruction into smaller "
                    f"tiles", operand=worst.name, value=used + pinned, limit=hard + pinned,
                    loc=ins.loc)
        if used > peak:
            peak = used
        for v in ins.writes():
            if v.storage.id in ops:
                dirty[v.storage.id] = i
        for sid in ops:
            last_seen[sid] = i
            if rng[sid][1] == i:
                used -= resident.pop(sid)
                dirty.pop(sid, None)
    return spills, peak + pinned


def _evict_score(st, dirty, distance):
    """Traffic an eviction of ``st`` costs per byte of space it frees in each partition, over the
    distance (instructions) to its next use; the victims are taken lowest first.

    The traffic is its bytes over all its partitions, once for the reload and once more for the
    save when its HBM copy is stale (a load of an unchanged input is loaded again, not saved):
    a 1-partition row and a 128-partition tile of the same width free the same SBUF range, at
    1/128 of the traffic. With equal costs this is Belady's order (farthest next use first),
    which minimises the number of reloads; with unequal costs a compiler's spiller weighs them
    (spill weights), rather than paying a save and a reload where a clean tile frees the same
    space."""
    return st.partitions * (2 if dirty else 1) / max(1, distance)


def _warn_spills(program, spills, demand, cap):
    """One SpillWarning per spilled allocation site (name and line), with its byte totals."""
    sites: dict = {}
    for s in spills:
        st = s.storage
        a = sites.setdefault(st.loc if st.loc is not None else st.name, [st, 0, 0, 0])
        a[1] += 1
        a[2] += s.save_bytes
        a[3] += s.bytes
    arch = program.arch
    for st, n, saved, reloaded in sites.values():
        loc = st.loc
        msg = (f"sbuf-spill: live SBUF tiles need up to {demand} bytes per partition but the "
               f"{arch.name} has {cap} usable for automatically placed tiles ({arch.sbuf_account()}"
               f"{', less the user-placed tiles' if cap < arch.sbuf_usable_bytes_per_partition else ''}); "
               f"the compiler spills "
               f"tile {st.name} (allocated at {loc or '<unknown>'}, {st.bytes_per_partition} "
               f"B/partition): {n} eviction(s), {saved} bytes saved to HBM and {reloaded} bytes "
               f"reloaded. Tile the free dimension or shorten live ranges to avoid the extra DMA "
               f"traffic")
        if loc is not None:
            warnings.warn_explicit(msg, SpillWarning, loc.file, loc.line)
        else:
            warnings.warn(msg, SpillWarning, stacklevel=3)


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


def _live_psum(live, by_id, rng) -> str:
    """The live PSUM tiles, each with its shape, dtype, allocation line and last use."""
    tiles = sorted((by_id[i] for i in live if by_id[i].buffer.kind == "psum"),
                   key=lambda st: rng[st.id][0])
    return "; ".join(f"{st.name} {st.dtype}[{','.join(map(str, st.shape))}] allocated at "
                     f"{st.loc} (in use at positions {rng[st.id][0]}-{rng[st.id][1]})" for st in tiles)


def verify_program(program: Program):
    if settings().debug_verify:
        for ins in program.instrs:
            ins.op.check(ins, program.arch)
    check_capacity(program)
    from .limits import check_hbm_total
    check_hbm_total(program)
    from .lints import lint_program
    lint_program(program)


__all__ = ["Spill", "SpillWarning", "check_capacity", "live_ranges", "spill_plan",
           "verify_program", "auto_sbuf_capacity"]
