"""Counted ``while`` loops: the induction variable becomes a loop register.

JAX writes ``for t in range(n)`` (``fori_loop`` with static bounds, ``scan``) as a ``while``
whose state carries a scalar counter: it starts at a constant, the condition is ``t < N`` (or
``t <= N``, ``t != N``) with a constant ``N``, and the body's only write to it is ``t + 1``.
A compiler knows the trip count of such a loop, so instead of carrying ``t`` through HBM and
evaluating the condition as tiles every trip, :func:`lower_counted` emits a ``fori_loop`` whose
register *is* ``t``:

- the body is specialised for ``t`` in ``[first, last]`` (:func:`specialise`): the
  negative-index wrap JAX puts around ``x[t]`` (``select(t < 0, t + n, t)``) folds away, so a
  ``dynamic_slice`` sees ``t`` itself and addresses the window through the register
  (``lowering.lower.rules.layout``: a DMA with a run-time ``scalar_offset``, no clamp
  arithmetic, since the range shows the window stays inside);
- state the body passes through unchanged (weights, the sequence) is read where it is, not
  copied into loop state first;
- the counter's value after the loop is a constant;
- peepholes shorten every trip (``loop_peepholes``): a new state value is written into the
  loop state itself, a window copied into a scratch tensor is read where it lies, and a state
  loaded into one SBUF tile and stored from another stays on chip through the loop.

Loops that do not match keep the general ``while_loop`` form (``window.lower_while``).

    >>> from lowering.ir.types import TensorType
    >>> from lowering.ir.graph import Graph
    >>> g = Graph("b"); x, t = (g.param(TensorType((), "int32")) for _ in range(2))
    >>> z = g.add_op("constant", [], {"value": np.asarray(0, np.int32)})
    >>> neg = g.add_op("compare", [t, z], {"direction": "LT"})
    >>> g.set_outputs([g.add_op("select", [neg, x, t]), t])
    >>> s = specialise(g, 1, 0, 9); s.outputs[0] is s.params[1]     # t >= 0: the select is t
    True
"""
from __future__ import annotations

import numpy as np

from device.isa.control import VirtualRegister

from ...ir.graph import Graph
from ...ir.types import TensorType
from .loop_peepholes import forward_copies, state_on_chip, store_into

_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_FLIP = {"LT": "GT", "GT": "LT", "LE": "GE", "GE": "LE", "EQ": "EQ", "NE": "NE"}


def _producers(g):
    return {id(r): op for op in g.ops for r in op.results}


def _const_scalar(op):
    """The integer of a scalar integer ``constant`` op, else None."""
    if op is None or op.opcode != "constant" or op.result.type.shape != () or \
            op.result.type.dtype not in _INTS:
        return None
    return int(np.asarray(op.attrs["value"]).reshape(-1)[0])


def view_const(v):
    """The integer a constant one-element view holds, else None."""
    st = v.storage
    if st.kind != "const" or st.const is None or v.size != 1 or v.dyn is not None:
        return None
    return int(np.asarray(st.const).reshape(-1)[v.offset])


def counted_facts(op, inputs):
    """``(k, first, stop)`` when state ``k`` of the ``while`` op counts ``first, first+1, ...``
    while ``k < stop`` (trip count ``max(0, stop - first)``) and nothing else decides the loop;
    else None."""
    cond, body = op.attrs["cond"], op.attrs["body"]
    if len(cond.outputs) != 1:
        return None
    prod = _producers(cond)
    cmp = prod.get(id(cond.outputs[0]))
    if cmp is None or cmp.opcode != "compare":
        return None
    params = {id(p): i for i, p in enumerate(cond.params)}
    a, b = cmp.inputs
    direction = cmp.attrs.get("direction")
    if id(b) in params and id(a) not in params:       # N > t is t < N
        a, b, direction = b, a, _FLIP.get(direction)
    k, bound = params.get(id(a)), _const_scalar(prod.get(id(b)))
    if k is None or bound is None or cond.params[k].type != TensorType((), cond.params[k].type.dtype) \
            or cond.params[k].type.dtype not in _INTS:
        return None
    first = view_const(inputs[k])
    if first is None or not _steps_by_one(body, k):
        return None
    if direction == "LT":
        stop = bound
    elif direction == "LE":
        stop = bound + 1
    elif direction == "NE" and first <= bound:
        stop = bound
    else:
        return None
    info = np.iinfo(cond.params[k].type.dtype)
    if not (info.min <= first and max(first, stop) <= info.max):
        return None                                   # the counter would wrap
    return k, first, stop


def _steps_by_one(body, k):
    out = body.outputs[k]
    add = _producers(body).get(id(out))
    if add is None or add.opcode != "add":
        return None
    prod = _producers(body)
    x, y = add.inputs
    if y is body.params[k]:
        x, y = y, x
    return x is body.params[k] and _const_scalar(prod.get(id(y))) == 1


def _decide(direction, a, b):
    """The compare's value when intervals ``a`` and ``b`` decide it, else None."""
    (alo, ahi), (blo, bhi) = a, b
    table = {"LT": (ahi < blo, alo >= bhi), "LE": (ahi <= blo, alo > bhi),
             "GT": (alo > bhi, ahi <= blo), "GE": (alo >= bhi, ahi < blo),
             "EQ": (alo == ahi == blo == bhi, ahi < blo or alo > bhi),
             "NE": (ahi < blo or alo > bhi, alo == ahi == blo == bhi)}
    true, false = table.get(direction, (False, False))
    return True if true else False if false else None


def specialise(body: Graph, k: int, lo: int, hi: int) -> Graph:
    """A copy of ``body`` (outputs other than ``k``) where parameter ``k``, an integer scalar, is
    known to lie in ``[lo, hi]``: integer scalar compares the ranges decide become constants,
    selects on them become their chosen operand and same-type converts vanish."""
    g = Graph(body.name)
    env = {id(p): g.param(p.type, p.name) for p in body.params}
    rng = {id(env[id(body.params[k])]): (lo, hi)}    # new value -> interval of its integer
    known = {}                                        # new value -> its decided bool
    for op in body.ops:
        ins = [env[id(v)] for v in op.inputs]
        t = op.result.type
        scalar_int = t.shape == () and t.dtype in _INTS
        if op.opcode == "convert" and ins[0].type == t:
            env[id(op.result)] = ins[0]
            continue
        if op.opcode == "select" and id(ins[0]) in known:
            env[id(op.result)] = ins[1] if known[id(ins[0])] else ins[2]
            continue
        if op.opcode == "compare" and all(id(v) in rng for v in ins):
            val = _decide(op.attrs.get("direction"), rng[id(ins[0])], rng[id(ins[1])])
            if val is not None:
                new = g.add_op("constant", [], {"value": np.asarray(val)}, loc=op.loc)
                env[id(op.result)], known[id(new)] = new, val
                continue
        res = g.add_op(op.opcode, ins, dict(op.attrs), loc=op.loc)
        res = res if isinstance(res, tuple) else (res,)
        for old, new in zip(op.results, res):
            env[id(old)] = new
        if scalar_int:
            c = _const_scalar(g.ops[-1])
            if c is not None:
                rng[id(res[0])] = (c, c)
            elif op.opcode == "add" and all(id(v) in rng for v in ins):
                (a, b), (c, d) = rng[id(ins[0])], rng[id(ins[1])]
                rng[id(res[0])] = (a + c, b + d)
            elif op.opcode == "convert" and id(ins[0]) in rng:
                info = np.iinfo(t.dtype)
                a, b = rng[id(ins[0])]
                if info.min <= a and b <= info.max:
                    rng[id(res[0])] = (a, b)
    g.set_outputs([env[id(v)] for i, v in enumerate(body.outputs) if i != k])
    g.prune()
    return g


def _used(g: Graph, v) -> bool:
    return any(x is v for op in g.ops for x in op.inputs) or any(x is v for x in g.outputs)


def lower_counted(lw, op, inputs, facts):
    """Lower the ``while`` op as a ``fori_loop`` over its induction register (see the module)."""
    k, first, stop = facts
    body = op.attrs["body"]
    out_types = [r.type for r in op.results]
    spec = specialise(body, k, first, stop - 1)
    passthrough = [v is p for v, p in zip(body.outputs, body.params)]
    if stop <= first:                                      # no trips: the state is the input
        state = list(inputs)
        state[k] = lw.const(np.asarray([first]).astype(TensorType((), out_types[k].dtype).np_dtype),
                            out_types[k].dtype)
        return tuple(state)
    kt = out_types[k]
    reg = VirtualRegister("t", readonly=True)
    kview = lw.hbm((1,), kt.dtype, name="loop_counter")
    state = []
    for i, (v, t) in enumerate(zip(inputs, out_types)):
        if i == k:
            state.append(kview)
        elif passthrough[i]:
            state.append(v)                                # never written by the loop
        else:
            s = lw.hbm(t.shape or (1,), t.dtype, name="loop_state")
            lw.emit("dma_copy", dst=s, src=v.reshape(s.shape))
            state.append(s.reshape(tuple(t.shape)) if t.shape else s)
    with lw.region() as loop_body:
        if _used(spec, spec.params[k]):
            lw.emit("register_store", dst=kview, src=reg)
        saved = getattr(lw, "induction", {})
        lw.induction = {**saved, kview.storage.id: (reg, first, stop - 1)}
        try:
            new = lw.lower_subgraph(spec, state)
        finally:
            lw.induction = saved
        if loop_body and loop_body[0].op.name == "register_store" and not any(
                getattr(getattr(v, "storage", None), "id", None) == kview.storage.id
                for ins in loop_body[1:] for v in ins.reads()):
            del loop_body[0]                  # every use went through the register itself
        others = [i for i in range(len(state)) if i != k]
        owned = {state[i].storage.id for i in others if not passthrough[i]}
        staged = []
        for i, v in zip(others, new):
            s = state[i]
            if passthrough[i] or (v.storage.id == s.storage.id and v.offset == s.offset
                                  and v.pattern == s.pattern):
                staged.append((s, None))
            elif v.storage.id in owned or v.storage.id == kview.storage.id:
                tmp = lw.hbm(v.shape or (1,), v.dtype)       # results that alias state: copy first
                lw.emit("dma_copy", dst=tmp, src=v.reshape(tmp.shape))
                staged.append((s, tmp))
            else:
                staged.append((s, v))
        staged = [(s, v if v is None or not store_into(lw, loop_body, s, v, staged) else None)
                  for s, v in staged]
        forward_copies(lw, loop_body, {v.storage.id for _, v in staged if v is not None})
        for s, v in staged:
            if v is not None:
                lw.emit("dma_copy", dst=s.reshape((s.size,)), src=v.reshape((v.size,)))
        on_chip = [m for m in (state_on_chip(lw, loop_body, s) for s, v in staged
                               if v is None and s.storage.id in owned) if m is not None]
    reads, writes = [], []
    for ins in loop_body:
        reads += ins.reads()
        writes += ins.writes()
    for tile, view in on_chip:                      # the state's tile holds it through the loop
        lw.emit("dma_copy", dst=tile, src=view)
    lw.emit("fori_loop", reg=reg, lower=first, upper=stop, step=1, body=loop_body,
            _reads=reads, _writes=writes)
    for tile, view in on_chip:
        lw.emit("dma_copy", dst=view, src=tile)
    final = np.asarray([max(first, stop)]).astype(TensorType((), kt.dtype).np_dtype)
    state[k] = lw.const(final, kt.dtype)
    return tuple(state)

