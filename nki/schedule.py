"""Scheduling edges: ``kernel.with_schedule([...])`` and ``NkiInstruction.depends_on(...)``.

NKI lets a kernel author order instructions that have no data dependency (the scheduling guide):

    scheduled = kernel.with_schedule([("plus1", "recip")])      # plus1 runs after recip
    scheduled = kernel.with_schedule([("plus1", ["recip", "x"])])  # several producers

Names are the ``name=`` given to ISA calls. Semantics here, as on the device:

* The executor runs instructions in program order; an edge whose producer comes LATER in the
  program moves the consumer to just after the producer (allowed only when nothing in between
  touches the consumer's data, otherwise the edge contradicts a data dependency: an error).
* The timing model starts a consumer no earlier than the end of each of its producers
  (``args["_after"]``), so an edge can serialise instructions on different engines.

Errors (each names the kernel line): an edge that is not a (name, name | [names]) pair, a name no
top-level instruction carries (instructions inside ``nl.fori_loop`` bodies cannot take edges), a
name carried by several instructions, an instruction depending on itself, and an edge that
contradicts a data dependency.
"""
from __future__ import annotations

from device.errors import UserKernelError


def normalize_edges(edges) -> tuple:
    """``[(consumer, producer | [producers]), ...]`` -> ((consumer, (producers...)), ...)."""
    if isinstance(edges, (str, bytes)) or not hasattr(edges, "__iter__"):
        raise UserKernelError(f"with_schedule: expected a list of (consumer, producer) pairs of "
                              f"instruction names, got {edges!r}", loc=None)
    out = []
    for e in edges:
        if not isinstance(e, (tuple, list)) or len(e) != 2 or not isinstance(e[0], str):
            raise UserKernelError(f"with_schedule: each edge is a pair (consumer_name, "
                                  f"producer_name or [producer_names]), got {e!r}", loc=None)
        prods = (e[1],) if isinstance(e[1], str) else tuple(e[1])
        if not prods or not all(isinstance(p, str) for p in prods):
            raise UserKernelError(f"with_schedule: the producers of {e[0]!r} must be a name or a "
                                  f"non-empty list of names, got {e[1]!r}", loc=None)
        out.append((e[0], prods))
    return tuple(out)


def resolve_named(program, edges, kernel_name) -> list:
    """Name pairs -> (consumer Instr, producer Instr) pairs, per NeuronCore of the program."""
    by_core: dict = {}
    for ins in program.instrs:
        if ins.name is not None:
            by_core.setdefault(int(ins.args.get("_core", 0)), {}).setdefault(
                ins.name, []).append(ins)
    pairs = []
    for core, names in sorted(by_core.items()) or [(0, {})]:
        for cons, prods in edges:
            c = _one(names, cons, kernel_name)
            for p in prods:
                pairs.append((c, _one(names, p, kernel_name)))
    return pairs


def _one(names, name, kernel_name):
    hits = names.get(name)
    if not hits:
        known = ", ".join(sorted(names)) or "none"
        raise UserKernelError(f"{kernel_name}.with_schedule: no instruction is named {name!r} "
                              f"(named instructions: {known}); pass name=... to the nisa call, "
                              f"outside any nl.fori_loop body", loc=None)
    if len(hits) > 1:
        raise UserKernelError(f"{kernel_name}.with_schedule: {len(hits)} instructions are named "
                              f"{name!r} (lines {', '.join(str(h.loc.line) for h in hits if h.loc)}); "
                              f"give each a distinct name, e.g. name=f\"{name}{{i}}\"",
                              loc=hits[1].loc)
    return hits[0]


def _touches(a, b) -> str | None:
    """The storage through which instructions a and b depend on each other, or None."""
    aw, bw = a.writes(), b.writes()
    for x, y in [(v, w) for v in aw for w in b.reads() + bw] + [(v, w) for v in a.reads()
                                                              for w in bw]:
        if x.storage.id != y.storage.id:
            continue
        (l1, h1), (l2, h2) = x.byte_span(), y.byte_span()
        if l1 < h2 and l2 < h1:
            return x.storage.name
    return None


def apply_edges(program, pairs) -> None:
    """Order the program so every consumer follows its producers; record ``_after`` for timing."""
    for cons, prod in pairs:
        if cons is prod:
            raise UserKernelError(f"scheduling edge: instruction {cons.name or cons.op.name} "
                                  f"cannot depend on itself", loc=cons.loc)
        instrs = program.instrs
        for x in (cons, prod):
            if not any(x is y for y in instrs):
                raise UserKernelError(f"scheduling edge: {x.op.name} at {x.loc} sits inside a "
                                      f"dynamic loop body (nl.fori_loop / dynamic_range); edges "
                                      f"may only join top-level instructions", loc=x.loc)
        ci = next(k for k, y in enumerate(instrs) if y is cons)
        pi = next(k for k, y in enumerate(instrs) if y is prod)
        if pi > ci:                       # move the consumer down to just after its producer
            for k in range(ci + 1, pi + 1):
                via = _touches(cons, instrs[k])
                if via is not None:
                    who = instrs[k]
                    raise UserKernelError(
                        f"scheduling edge {cons.name or cons.op.name!r} after "
                        f"{prod.name or prod.op.name!r} contradicts a data dependency: "
                        f"{who.op.name} at {who.loc} uses tensor {via} after "
                        f"{cons.op.name} at {cons.loc} in program order", loc=cons.loc)
            instrs.insert(pi, instrs.pop(ci))
            for k, ins in enumerate(instrs):
                ins.index = k
        after = cons.args.setdefault("_after", [])
        if prod not in after:
            after.append(prod)


def apply_schedule(program, named_edges, kernel_name) -> None:
    """Apply a traced program's edges: ``depends_on`` calls and ``with_schedule`` names."""
    pairs, program.info.sched_pairs = list(program.info.sched_pairs), []
    if named_edges:
        pairs += resolve_named(program, named_edges, kernel_name)
    if pairs:
        apply_edges(program, pairs)
