"""Peepholes on the body of a counted loop (``counted.lower_counted``), each exact (the program
computes the same bytes) and each saving a transfer per trip:

- :func:`store_into`: the one DMA writing a new state value writes the loop state itself when
  nothing after it needs the old value (no HBM copy at the end of the trip);
- :func:`forward_copies`: a window copied into an HBM scratch tensor that one DMA then reads
  whole is read by that DMA directly (``x[t]`` goes HBM -> SBUF in one transfer);
- :func:`state_on_chip`: a state loaded once into an SBUF tile and stored once from a tile of
  the same shape stays in that tile through the loop (``h`` of an RNN never leaves SBUF).

    >>> # store_into(lw, body, state_view, new_value_view, staged) -> bool
"""
from __future__ import annotations


def _whole(v) -> bool:
    """``v`` covers its storage in row-major order, in the storage's dtype."""
    return v.offset == 0 and v.size == v.storage.size and v.dtype == v.storage.dtype and \
        v.is_contiguous()


def store_into(lw, body, s, v, staged) -> bool:
    """Make the body's one write of a new state value ``v`` write state ``s`` itself, so the
    iteration does not end with a copy of it (an HBM round trip per state per trip): when a
    single DMA writes all of ``v`` (a scratch tensor nothing else in the body reads) and nothing
    after that DMA reads or writes ``s``. Returns whether it did (``v``'s storage is then
    unused and dropped from the program)."""
    sid, vid = s.storage.id, v.storage.id
    if not (_whole(v) and _whole(s) and v.dtype == s.dtype) or \
            sum(1 for _, x in staged if x is not None and x.storage.id == vid) != 1:
        return False
    writers = [j for j, ins in enumerate(body) if any(w.storage.id == vid for w in ins.writes())]
    if len(writers) != 1:
        return False
    w = writers[0]
    ins = body[w]
    dst = ins.args.get("dst")
    if ins.op.name != "dma_copy" or dst is None or dst.dyn is not None or not _whole(dst) or \
            any(r.storage.id == vid for b in body for r in b.reads()) or \
            any(x.storage.id == sid for b in body[w + 1:] for x in (*b.reads(), *b.writes())):
        return False
    ins.args["dst"] = s.reshape(dst.shape)
    ins.op.check(ins, lw.arch)
    if vid not in {x.storage.id for b in body for x in (*b.reads(), *b.writes())}:
        lw.p.storages = [st for st in lw.p.storages if st.id != vid]
    return True


def forward_copies(lw, body, keep=()):
    """A DMA that only copies a window into an HBM scratch tensor (``x[t]`` of a
    ``dynamic_slice``) which one later DMA reads whole: that DMA reads the window itself (one
    transfer per trip instead of two; the scratch tensor is dropped). Both copy without
    conversion, in row-major order, and nothing between them writes the window's tensor or
    its offset. ``keep``: storages read after the body (not forwarded)."""
    j = 0
    while j < len(body):
        ins = body[j]
        j += 1
        dst, src = ins.args.get("dst"), ins.args.get("src")
        if ins.op.name != "dma_copy" or dst is None or dst.dyn is not None or \
                dst.buffer.on_chip or not _whole(dst) or dst.storage.id in keep or \
                src.dtype != dst.dtype or ins.args.get("oob_mode") not in (None, 0, "error") or \
                dst.storage.kind != "tile":
            continue
        tid = dst.storage.id
        users = [k for k, b in enumerate(body) if k != j - 1 and
                 any(x.storage.id == tid for x in (*b.reads(), *b.writes()))]
        if len(users) != 1 or users[0] < j:
            continue
        k = users[0]
        rd = body[k]
        rsrc = rd.args.get("src")
        if rd.op.name != "dma_copy" or rsrc is None or rsrc.storage.id != tid or \
                not _whole(rsrc) or rd.args["dst"].storage.id == tid:
            continue
        watched = {src.storage.id} | ({src.dyn[1].storage.id} if src.dyn is not None and
                                      hasattr(src.dyn[1], "storage") else set())
        if any(w.storage.id in watched for b in body[j:k] for w in b.writes()):
            continue
        try:
            new = src.reshape(rsrc.shape)
        except Exception:                        # noqa: BLE001 -- a layout that needs a copy
            continue
        rd.args["src"] = new
        rd.op.check(rd, lw.arch)
        del body[j - 1]
        j -= 1
        lw.p.storages = [st for st in lw.p.storages if st.id != tid]


def _touches(ins, sid) -> bool:
    return any(x.storage.id == sid for x in (*ins.reads(), *ins.writes()))


def state_on_chip(lw, body, s):
    """Keep state ``s`` in the SBUF tile the body loads it into, when the body reads it once
    (a DMA into a tile nothing else in the body writes, nor touches before that load) and
    writes it once, later, from an SBUF tile of the same shape and dtype: the write becomes a
    copy into that tile and the load goes (the tile is loaded before the loop and stored to
    ``s`` after it, by the caller). When one instruction alone computes the written tile, it
    writes the state tile directly. Returns ``(tile, view of s)`` or None (nothing changed)."""
    sid = s.storage.id
    at = [j for j, ins in enumerate(body) if _touches(ins, sid)]
    if len(at) != 2:
        return None
    r, w = at
    load, store = body[r], body[w]
    if load.op.name != "dma_copy" or store.op.name != "dma_copy":
        return None
    view, tile = load.args["src"], load.args["dst"]
    src = store.args["src"]
    if view.storage.id != sid or store.args["dst"].storage.id != sid or \
            (view.offset, view.pattern) != (store.args["dst"].offset, store.args["dst"].pattern) \
            or view.size != s.storage.size or view.dyn is not None or \
            not tile.on_chip or not src.on_chip or tile.shape != src.shape or \
            not (tile.dtype == src.dtype == view.dtype) or not _whole(tile) or \
            src.storage.id == tile.storage.id:
        return None
    tid = tile.storage.id
    if any(_touches(b, tid) for b in body[:r] + body[w + 1:]) or \
            any(tid in {x.storage.id for x in b.writes()} for b in body[r + 1:w]):
        return None
    store.args["dst"] = tile
    store.op.check(store, lw.arch)
    del body[r]
    _compute_into(lw, body, w - 1, tile)
    return tile, view


def _compute_into(lw, body, w, tile):
    """``body[w]`` copies tile ``src`` (written whole by one earlier instruction, read by
    nothing else) into ``tile``: that instruction writes ``tile`` itself and the copy goes,
    when nothing between them reads or writes ``tile`` and it does not read ``tile``."""
    src = body[w].args["src"]
    sid, tid = src.storage.id, tile.storage.id
    if not _whole(src):
        return
    users = [j for j, b in enumerate(body) if j != w and _touches(b, sid)]
    if len(users) != 1:
        return
    p = users[0]
    prod = body[p]
    dst = prod.args.get("dst")
    outs = prod.writes()
    if p > w or dst is None or len(outs) != 1 or outs[0] is not dst or \
            dst.storage.id != sid or (dst.offset, dst.pattern) != (src.offset, src.pattern) or \
            dst.shape != tile.shape or any(x.storage.id == sid for x in prod.reads()) or \
            any(_touches(b, tid) for b in body[p:w]):
        return
    prod.args["dst"] = tile
    prod.op.check(prod, lw.arch)
    del body[w]
