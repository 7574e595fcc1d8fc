"""Scheduler parts: dependency tracking by byte footprint, shared-bandwidth resources, the SBUF
allocator pool, and cross-core grouping. ``device.timing.Scheduler`` puts them together.

Every record keeps the id of the timeline event that made it (``eid``), so the scheduler can say
which earlier event decided when a later one started (the critical-path explanation).
"""
from __future__ import annotations

import bisect
import heapq

_INF = float("inf")


def footprint(v):
    """(storage id, p0, p1, b0, b1): partition range and byte range within a partition (on chip);
    for HBM, partitions are (0, 1) and the byte range is the whole span of the view."""
    st = v.storage
    lo, hi = v.byte_span()
    if not st.buffer.on_chip or v.dyn is not None:
        if v.dyn is not None:
            return st.id, 0, 1 << 30, 0, 1 << 62
        return st.id, 0, 1, lo, hi
    pbytes = st.bytes_per_partition
    if not pbytes:
        return st.id, 0, 1, lo, hi
    pat = v.pattern
    p0 = lo // pbytes
    nparts = pat[0][1] if pat else 1
    f_lo = lo - p0 * pbytes
    span = 0
    for s, c in pat[1:]:
        span += (s if s > 0 else -s) * (c - 1)
    f_hi = f_lo + (span + 1) * v.itemsize
    if f_hi > pbytes or (nparts > 1 and pat[0][0] * v.itemsize != pbytes):
        return st.id, 0, st.shape[0], 0, pbytes      # unusual pattern: the whole tile
    return st.id, p0, p0 + nparts, f_lo, f_hi


class Tracker:
    """Last writers and readers of each storage region, for dependency edges.

    Records are ``[p0, p1, b0, b1, end, done, key, index, eid]``; a write that covers older records
    supersedes them, and long lists are folded into one bounding record (keeps every dependency).
    An in-order engine needs no wait for its own earlier instructions except for true (RAW) data
    dependencies; DMA keys are unique per transfer, since queues run independently.
    """
    FOLD = 64

    def __init__(self):
        self.writes: dict = {}
        self.reads: dict = {}

    def ready(self, fp, is_write, key, sem, prev):
        """(earliest start allowed by producers of ``fp``, whether ``fp`` reads the result of
        instruction ``prev`` on the same engine, event id of the producer that decided it or -1)."""
        sid, p0, p1, b0, b1 = fp
        t = 0.0
        who = -1
        dep_prev = False
        lst = self.writes.get(sid)
        if lst:
            for r in lst:
                if r[0] < p1 and p0 < r[1] and r[2] < b1 and b0 < r[3]:
                    if r[6] == key:
                        if not is_write:                  # RAW on the same engine
                            if r[5] > t:
                                t, who = r[5], r[8]
                            if r[7] == prev:
                                dep_prev = True
                    elif r[5] + sem > t:
                        t, who = r[5] + sem, r[8]
        if is_write:
            lst = self.reads.get(sid)
            if lst:
                for r in lst:
                    if r[6] != key and r[4] + sem > t and r[0] < p1 and p0 < r[1] and \
                            r[2] < b1 and b0 < r[3]:
                        t, who = r[4] + sem, r[8]         # WAR: wait until the reader has read
        return t, dep_prev, who

    def record(self, fp, end, done, key, index, is_write, eid=-1):
        sid, p0, p1, b0, b1 = fp
        rec = [p0, p1, b0, b1, end, done, key, index, eid]
        if is_write:
            lst = self.writes.get(sid)
            if lst is None:
                self.writes[sid] = [rec]
            else:
                lst[:] = [r for r in lst if not (p0 <= r[0] and r[1] <= p1 and b0 <= r[2]
                                                 and r[3] <= b1 and r[5] <= done)]
                lst.append(rec)
                if len(lst) > self.FOLD:
                    self._fold(lst)
            rl = self.reads.get(sid)
            if rl:
                rl[:] = [r for r in rl if not (p0 <= r[0] and r[1] <= p1 and b0 <= r[2]
                                               and r[3] <= b1 and r[4] <= end)]
            return
        lst = self.reads.get(sid)
        if lst is None:
            self.reads[sid] = [rec]
        else:
            lst.append(rec)
            if len(lst) > self.FOLD:
                self._fold(lst)

    @staticmethod
    def _fold(lst):
        """Merge all but the newest 8 records into one bounding record (keeps every dependency,
        may add some)."""
        keep = len(lst) - 8
        m = list(lst[0])
        for r in lst[1:keep]:
            if r[0] < m[0]:
                m[0] = r[0]
            if r[1] > m[1]:
                m[1] = r[1]
            if r[2] < m[2]:
                m[2] = r[2]
            if r[3] > m[3]:
                m[3] = r[3]
            if r[4] > m[4]:
                m[4] = r[4]
            if r[5] > m[5]:
                m[5] = r[5]
                m[8] = r[8]                # the latest producer stands for the folded ones
        m[6], m[7] = ("folded",), -1
        lst[:keep] = [m]


class Fluid:
    """A shared bandwidth resource (the DMA engines, the HBM share) as busy intervals in time.

    ``take(t, amount)`` uses the first ``amount`` ns of free time at or after ``t`` (filling gaps
    left by transfers that were issued earlier in program order but started later) and returns
    (first use, completion). Adjacent busy intervals merge, so the list stays short.
    """

    def __init__(self):
        self.s: list = []
        self.e: list = []

    def take(self, t, amount):
        s, e = self.s, self.e
        first = None
        while True:
            i = bisect.bisect_right(s, t) - 1
            if i >= 0 and e[i] > t:
                t = e[i]                   # inside a busy interval: move to its end
                continue
            nxt = s[i + 1] if i + 1 < len(s) else _INF
            use = amount if amount < nxt - t else nxt - t
            if first is None:
                first = t
            self._add(t, t + use)
            amount -= use
            if amount <= 1e-9:
                return first, t + use
            t += use

    def _add(self, a, b):
        s, e = self.s, self.e
        i = bisect.bisect_left(s, a)
        # merge with the previous interval if it touches
        if i > 0 and e[i - 1] >= a - 1e-9:
            i -= 1
            a = s[i]
            if e[i] > b:
                b = e[i]
            del s[i]
            del e[i]
        while i < len(s) and s[i] <= b + 1e-9:
            if e[i] > b:
                b = e[i]
            del s[i]
            del e[i]
        s.insert(i, a)
        e.insert(i, b)


def take_space(pool, nbytes):
    """Take ``nbytes`` of SBUF from the pool (a heap of (free at, bytes, event id that frees it)),
    earliest-freed space first; returns (when all of it is free, the event that frees the last of
    it) -- (0.0, -1) if it was never used. Space the program-order plan says is there always is."""
    t, who = 0.0, -1
    while nbytes > 0 and pool:
        tm, b, e = heapq.heappop(pool)
        if tm > t:
            t, who = tm, e
        if b > nbytes:
            heapq.heappush(pool, (tm, b - nbytes, e))
            break
        nbytes -= b
    return t, who


def sbuf_plan(program, spills):
    """Allocator events for automatically placed SBUF tiles, by instruction index:
    (bytes taken before i, [(bytes, spill or None)] given back after i, spills saved after i,
    spills reloaded before i). Reloaded segments take their space at the reload.

    In-place reuse (what compilers' buffer assignment does): a new tile written by a compute
    instruction takes the space of an input tile that instruction reads for the last time (the
    engines stream element-wise, reading each element before writing its result). Only the rest
    is taken from the pool; the reused bytes go back at the new tile's last use."""
    first, last = {}, {}
    for ins in program.instrs:
        for v in ins.reads() + ins.writes():
            st = v.storage
            if st.buffer.kind == "sbuf" and st.address is None:
                if st.id not in first:
                    first[st.id] = (ins.index, st.bytes_per_partition)
                last[st.id] = ins.index
    take, give, saves, reloads = {}, {}, {}, {}
    for sid, (i, b) in first.items():
        take[i] = take.get(i, 0) + b
    kept: dict = {}                                  # storage id -> bytes handed to a new tile
    for ins in program.instrs:
        i = ins.index
        if not take.get(i) or ins.engine.startswith("DMA"):
            continue
        dying = {}
        for v in ins.reads():
            sid = v.storage.id
            if sid in first and last[sid] == i and first[sid][0] < i:
                dying[sid] = first[sid][1]
        for v in ins.writes():
            sid = v.storage.id
            if sid not in first or first[sid][0] != i:
                continue
            for d, b in dying.items():
                if b > 0:
                    r = min(b, first[sid][1])
                    dying[d] = b - r
                    kept[d] = kept.get(d, 0) + r
                    take[i] -= r
                    break
    for sid, (i, b) in first.items():
        if b > kept.get(sid, 0):
            give.setdefault(last[sid], []).append((b - kept.get(sid, 0), None))
    for sp in spills:
        give.setdefault(sp.last_use, []).append((sp.storage.bytes_per_partition, sp))
        if sp.save_after is not None:
            saves.setdefault(sp.save_after, []).append(sp)
        reloads.setdefault(sp.reload_before, []).append(sp)
    return take, give, saves, reloads


def scan_program(program):
    """(storage id -> index of the last instruction touching it, for PSUM storages;
    ids of storages some instruction writes). Reads of never-written storages (kernel inputs,
    constants) create no dependencies, so the scheduler need not track them."""
    last, written = {}, set()
    for ins in program.instrs:
        for v in ins.writes():
            written.add(v.storage.id)
            if v.storage.buffer.kind == "psum":
                last[v.storage.id] = ins.index
        for v in ins.reads():
            if v.storage.buffer.kind == "psum":
                last[v.storage.id] = ins.index
    return last, written



def rematerialisable(program):
    """Ids of SBUF storages whose every write is a DMA load of a kernel input that the kernel
    never writes: a spill needs no save for them, the reload reads the input again (what
    compilers do instead of spilling a load: rematerialisation)."""
    ok, bad, inputs_written = set(), set(), set()
    for ins in program.instrs:
        for v in ins.writes():
            st = v.storage
            if st.buffer.kind == "hbm":
                inputs_written.add(st.id)
                continue
            if st.buffer.kind != "sbuf" or st.id in bad:
                continue
            srcs = ins.reads()
            if ins.engine.startswith("DMA") and srcs and all(
                    r.storage.buffer.kind == "hbm" and r.storage.kind == "input" for r in srcs):
                ok.add(st.id)
                for r in srcs:
                    ok.add(("src", st.id, r.storage.id))
            else:
                bad.add(st.id)
    srcs_of: dict = {}
    for k in ok:
        if isinstance(k, tuple):
            srcs_of.setdefault(k[1], set()).add(k[2])
    return {sid for sid in ok if not isinstance(sid, tuple) and sid not in bad
            and not srcs_of.get(sid, set()) & inputs_written}


_SYNC = ("sendrecv", "core_barrier")


def interleave(program):
    """Instructions in scheduling order, grouped: a single instruction, or the matching
    cross-core sync instructions (sendrecv / core_barrier) of each core, which start together."""
    streams: dict = {}
    for ins in program.instrs:
        streams.setdefault(ins.args.get("_core", 0), []).append(ins)
    if len(streams) == 1 or not any(i.op.name in _SYNC for i in program.instrs):
        return [[i] for i in program.instrs]
    cores = sorted(streams)
    pos = dict.fromkeys(cores, 0)
    out = []
    while any(pos[c] < len(streams[c]) for c in cores):
        group = []
        for c in cores:                      # run each core up to its next sync instruction
            st = streams[c]
            while pos[c] < len(st) and st[pos[c]].op.name not in _SYNC:
                out.append([st[pos[c]]])
                pos[c] += 1
            if pos[c] < len(st):
                group.append(st[pos[c]])
                pos[c] += 1
        if group:
            out.append(group)
    return out


def shared_ports(eng, reads, writes):
    """NC-v2 shared ports this compute instruction holds (CM 2.1)."""
    kinds = {v.storage.buffer.kind for v in reads} | {v.storage.buffer.kind for v in writes}
    ports = []
    if eng in ("DVE", "POOL") and "sbuf" in kinds:
        ports.append("sbuf")
    if eng in ("DVE", "ACT") and "psum" in kinds:
        ports.append("psum")
    return ports


def union_length(intervals):
    """Total length of the union of (start, end) intervals."""
    if not intervals:
        return 0.0
    intervals = sorted(intervals)
    total, cs, ce = 0.0, intervals[0][0], intervals[0][1]
    for s, e in intervals[1:]:
        if s > ce:
            total += ce - cs
            cs, ce = s, e
        elif e > ce:
            ce = e
    return total + ce - cs

