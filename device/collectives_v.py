"""The variable-size collectives ``all_gather_v`` and ``all_to_all_v``: where each piece lands.

Both treat src and dst as flat element buffers and read their sizes at run time from a uint32
metadata tensor of ``rows x n`` values (n = ranks in the rank-list; on SBUF it is (1, rows, n)):

    row 0  send counts      row 1  send displacements       (elements)
    row 2  recv counts      row 3  recv displacements       (row 3 only with has_rdispls=True)

* ``all_to_all_v``: rank r sends ``src[sdispl[j] : sdispl[j] + scount[j]]`` to the j-th rank.
* ``all_gather_v``: the send side is one chunk broadcast to everybody, ``src[sdispl[0] :
  sdispl[0] + scount[0]]`` (the NKI docs: rows 0/1 have one column per rank but only the first
  is read).

The receiver places the piece from the j-th rank of the rank-list at ``recv_displs[j]`` with
``has_rdispls=True``; otherwise dst is split in n equal slots and it lands at the start of slot
j (``slot = dst elements / n``). A rank that sends 0 elements leaves its slot untouched. With
``recv_counts_known=False`` the counts actually received are written into row 2 of the
receiver's metadata (kernels read them back after the collective); with ``True`` row 2 must
already hold them, and a mismatch is an error rather than a silently short or long copy.

    >>> # 2 ranks, all_gather_v, dst of 8 elements = two slots of 4:
    >>> # rank 0 meta [[3, 3], [0, 0], [0, 0]] -> its src[0:3] lands at dst[0:3] of both ranks
    >>> # rank 1 meta [[2, 2], [1, 1], [0, 0]] -> its src[1:3] lands at dst[4:6]; row 2 := [3, 2]
"""
from __future__ import annotations

import numpy as np

from .errors import HardwareRuleError, UserKernelError
from .tensor import View

VARIABLE_KINDS = ("all_gather_v", "all_to_all_v")


def check_variable(i):
    """Trace-time rules of the NKI docs: one src and one dst, both in HBM; integer metadata."""
    a = i.args
    api = f"nki.collectives.{a['kind']}"
    if len(a["srcs"]) != 1 or len(a["dsts"]) != 1:
        raise UserKernelError(f"{api}: takes exactly one src and one dst tensor, got "
                              f"{len(a['srcs'])} and {len(a['dsts'])}", loc=i.loc)
    for name in ("srcs", "dsts"):
        v = a[name][0]
        if v.buffer.kind != "hbm":
            raise HardwareRuleError(
                "collective-buffer", f"{api}: {name[:-1]} {v.storage.name} is in "
                f"{v.buffer.kind}; the variable-size collectives move flat element buffers in HBM "
                f"(allocate it with buffer=nl.shared_hbm or nl.hbm)", operand=name,
                value=v.buffer.kind, limit="hbm", loc=i.loc)
    m = a.get("meta")
    if m is None:
        raise UserKernelError(f"{api}: metadata_tensor is required", loc=i.loc)
    if np.dtype(m.dtype).kind not in "ui":
        raise HardwareRuleError(
            "collective-meta", f"{api}: metadata_tensor {m.storage.name} has dtype {m.dtype}; "
            f"counts and displacements are uint32 elements", operand="metadata_tensor",
            value=str(m.dtype), limit="uint32", loc=i.loc)


def _contiguous(v):
    """Is ``v`` a row-major compact view, so a flat element range is one run of its storage?"""
    want = 1
    for s, c in reversed(v.pattern):
        if c != 1 and s != want:
            return False
        want *= c
    return v.dyn is None


def _piece(v, lo, cnt):
    """The flat elements [lo, lo + cnt) of a contiguous view, as a view of their own."""
    return View(v.storage, v.offset + lo, [(1, cnt)], v.dtype)


def read_meta(i, mem, n):
    """This rank's metadata values, checking for uninitialised reads only the rows the flags
    make the collective read: rows 0-1, row 2 with recv_counts_known, row 3 with has_rdispls
    (nki-library's build_all_to_all_v_metadata leaves row 2 unwritten for the runtime)."""
    m = i.args["meta"]
    values = np.array(mem.array(m)).reshape(-1)
    if not _contiguous(m) or values.size % n:
        return mem.read(m, i.loc).reshape(-1)
    rows = values.size // n
    used = [0, 1] + ([2] if i.args.get("recv_known") else []) + \
        ([3] if i.args.get("has_rdispls") else [])
    for k in used:
        if k < rows:
            mem.read(_piece(m, k * n, n), i.loc)
    return values


def snapshot(i, mem, v, meta, ranks):
    """What this rank posts for src ``v``: all its values, read without the whole-tensor
    uninitialised-read check (a send buffer is typically filled only up to its counts); the
    element ranges the metadata actually sends are read through ``mem.read`` so reading
    unwritten ones still warns at the collective's line."""
    flat = np.array(mem.array(v)).reshape(-1)
    if meta is None or not _contiguous(v):
        return mem.read(v, i.loc).reshape(-1)
    n = len(ranks)
    m = np.asarray(meta).reshape(-1)
    if m.size < 2 * n:
        return flat                              # the receivers report the bad metadata
    cols = [0] if i.args["kind"] == "all_gather_v" else range(n)
    for j in cols:
        cnt, disp = int(m[j]), int(m[n + j])
        if cnt > 0 and disp + cnt <= flat.size:
            mem.read(_piece(v, disp, cnt), i.loc)
    return flat


def meta_rows(i, values, n, who):
    """A rank's metadata as a (rows, n) int64 array, checking the row count the flags need."""
    a = i.args
    v = np.asarray(values).reshape(-1)
    rows = v.size // n if n else 0
    need = 4 if a.get("has_rdispls") else (3 if a.get("recv_known") else 2)
    if rows * n != v.size or not need <= rows <= 4:
        why = ("; has_rdispls=True reads row 3" if need == 4 else
               "; recv_counts_known=True reads row 2" if need == 3 else "")
        raise HardwareRuleError(
            "collective-meta", f"nki.collectives.{a['kind']}: {who}'s metadata_tensor has "
            f"{v.size} values; it must be {need if need == 4 else f'{need} to 4'} rows x {n} "
            f"ranks (send_counts, send_displs, recv_counts, recv_displs{why})",
            operand="metadata_tensor", value=v.size, limit=f"{need * n}..{4 * n}", loc=i.loc)
    return v.reshape(rows, n)


def deliver_variable(i, mem, me, ranks, posts, t, dst):
    """Write what rank ``me`` receives into ``dst`` (returns None), or return the new contents
    of ``dst`` (flat) when it is not a contiguous view; writes row 2 back when it is unknown.

    ``posts[r]`` = (instruction, [src snapshots], metadata values) of each rank of the list.
    """
    a = i.args
    kind, n, pos = a["kind"], len(ranks), ranks.index(me)
    api = f"nki.collectives.{kind}"
    flat = np.array(mem.array(dst)).reshape(-1)  # slots nobody sends to keep their contents
    has_rd = bool(a.get("has_rdispls"))
    slot = flat.size // n
    if not has_rd and slot * n != flat.size:
        raise HardwareRuleError(
            "collective-shape", f"{api}: without has_rdispls dst is split in {n} equal slots, one "
            f"per rank, but dst has {flat.size} elements", operand="dsts", value=flat.size,
            limit=f"a multiple of {n}", loc=i.loc)
    mine = meta_rows(i, posts[me][2], n, f"rank {me}")
    recv, pieces = [], []
    for j, r in enumerate(ranks):
        m = meta_rows(i, posts[r][2], n, f"rank {r}")
        col = 0 if kind == "all_gather_v" else pos      # all_gather_v: one chunk for everybody
        cnt, sdisp = int(m[0, col]), int(m[1, col])
        src = posts[r][1][t].reshape(-1)
        if sdisp + cnt > src.size:
            raise HardwareRuleError(
                "collective-shape", f"{api}: rank {r} sends src[{sdisp}:{sdisp + cnt}] "
                f"(send_displ {sdisp}, send_count {cnt}) but its src has {src.size} elements",
                operand="metadata_tensor", value=sdisp + cnt, limit=src.size, loc=i.loc)
        if a.get("recv_known") and int(mine[2, j]) != cnt:
            raise HardwareRuleError(
                "collective-meta", f"{api}: recv_counts_known=True but rank {me}'s recv_counts[{j}]"
                f" is {int(mine[2, j])} while rank {r} sends it {cnt} elements",
                operand="metadata_tensor", value=int(mine[2, j]), limit=cnt, loc=i.loc)
        rdisp = int(mine[3, j]) if has_rd else j * slot
        if not has_rd and cnt > slot:
            raise HardwareRuleError(
                "collective-shape", f"{api}: rank {r} sends {cnt} elements to rank {me}, more "
                f"than its slot of {slot} (dst {flat.size} elements / {n} ranks)",
                operand="metadata_tensor", value=cnt, limit=slot, loc=i.loc)
        if rdisp + cnt > flat.size:
            raise HardwareRuleError(
                "collective-shape", f"{api}: rank {r}'s {cnt} elements at recv displacement "
                f"{rdisp} run past dst's {flat.size} elements", operand="dsts",
                value=rdisp + cnt, limit=flat.size, loc=i.loc)
        flat[rdisp:rdisp + cnt] = src[sdisp:sdisp + cnt]
        recv.append(cnt)
        pieces.append((rdisp, cnt))
    out_meta = a.get("meta_out")
    if out_meta is not None and t == 0 and mine.shape[0] >= 3:
        rows = meta_rows(i, np.array(mem.array(out_meta)), n, f"rank {me}").copy()
        rows[2, :] = recv                        # the runtime fills in what it received
        mem.write(out_meta, rows.reshape(out_meta.shape).astype(out_meta.dtype))
    if _contiguous(dst):                         # only what arrived counts as written
        for lo, cnt in pieces:
            if cnt:
                mem.write(_piece(dst, lo, cnt), flat[lo:lo + cnt])
        return None
    return flat


__all__ = ["VARIABLE_KINDS", "check_variable", "read_meta", "snapshot", "meta_rows",
           "deliver_variable"]
