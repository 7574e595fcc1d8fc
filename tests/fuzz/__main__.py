"""The long fuzzing run (documented in tests/fuzz/README.md):

    python -m tests.fuzz --hlo 10000 --stablehlo 4000 [--bytecode 400] [--seed 0] [--timeout 30]

Mutants of the seed programs (tests/fuzz/seeds.py, exported by JAX here and now) and grammar-made
modules run in a worker process each; prints the counts per outcome and one example per distinct
failure, and exits non-zero if anything but ``ok``/``refused`` happened (a refusal by an importer's
catch-all, ``unvalidated``, counts as a missing check).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import time

from .grammar import generate_hlo
from .harness import Pool
from .mutate import RandomChooser, mutate_bytes, mutate_text
from .seeds import seeds


def cases(n_hlo, n_shlo, n_bc, seed):
    s = seeds()
    for i in range(n_hlo):
        c = RandomChooser(seed * 1_000_003 + i)
        if i % 5 == 4:                                    # one in five: grammar-made, unmutated
            yield "hlo", "hlo-grammar", generate_hlo(c)
        elif i % 5 == 3:                                  # grammar-made then mutated
            yield "hlo", "hlo-grammar+mut", mutate_text(generate_hlo(c), c)
        else:
            name, text = c.choice(s["hlo"])
            yield "hlo", f"hlo:{name}", mutate_text(text, c)
    for i in range(n_shlo):
        c = RandomChooser(seed * 1_000_003 + 500_000 + i)
        name, text = c.choice(s["stablehlo"])
        yield "stablehlo", f"stablehlo:{name}", mutate_text(text, c, stable=True)
    for i in range(n_bc):
        c = RandomChooser(seed * 1_000_003 + 900_000 + i)
        name, data = c.choice(s["bytecode"])
        yield "stablehlo", f"bytecode:{name}", mutate_bytes(data, c)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tests.fuzz")
    ap.add_argument("--hlo", type=int, default=200)
    ap.add_argument("--stablehlo", type=int, default=80)
    ap.add_argument("--bytecode", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--json", default=None, help="write every non-ok case here")
    a = ap.parse_args(argv)
    counts = collections.Counter()
    examples: dict = {}
    bad = []
    pool = Pool(a.timeout)
    t0 = time.time()
    total = a.hlo + a.stablehlo + a.bytecode
    try:
        for k, (kind, origin, payload) in enumerate(cases(a.hlo, a.stablehlo, a.bytecode, a.seed)):
            r = pool.run(kind, payload, k)
            counts[r["status"]] += 1
            if r["status"] not in ("ok", "refused"):
                key = (r["status"], r.get("where") or r["detail"][:60])
                if key not in examples:
                    examples[key] = (origin, payload, r)
                bad.append({"origin": origin, **r,
                            "payload": payload if isinstance(payload, str) else payload.hex()})
            if (k + 1) % 500 == 0:
                print(f"  {k + 1}/{total} in {time.time() - t0:.0f} s: {dict(counts)}",
                      file=sys.stderr, flush=True)
    finally:
        pool.close()
    print(f"fuzzed {total} cases in {time.time() - t0:.0f} s (seed {a.seed})")
    for status in ("ok", "refused", "unvalidated", "foreign", "mismatch", "hang", "crash"):
        print(f"  {status:9s} {counts[status]}")
    for (status, where), (origin, payload, r) in sorted(examples.items(), key=str):
        shown = payload if isinstance(payload, str) else payload[:64].hex()
        print(f"\n[{status}] {where} from {origin}: {r['detail']}\n{shown[:1500]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(bad, f, indent=1)
    # a catch-all refusal ('unvalidated') is a missing check: it fails the run too
    return 0 if not (counts["unvalidated"] or counts["foreign"] or counts["mismatch"]
                     or counts["hang"] or counts["crash"]) else 1


if __name__ == "__main__":
    sys.exit(main())
