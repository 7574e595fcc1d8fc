"""``neuron tune``: autotune an imported model or a whole-tensor ``@neuron.jit`` model.

    neuron tune model.hlo.txt --target trn1
    neuron tune model.mlir --budget 30 --workers 2 --csv tuning.csv --png tuning.png
    neuron tune my_model.py:model 512x1024:bfloat16 1024x1024:bfloat16
    neuron tune model.hlo.txt --dask tcp://127.0.0.1:8786
"""
from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub):
    t = sub.add_parser("tune", help="autotune the tiling of a model (HLO, StableHLO, or "
                       "FILE.py:MODEL with argument specs)")
    t.add_argument("model", help="model.hlo.txt | model.mlir | FILE.py:MODEL")
    t.add_argument("args", nargs="*", help="argument specs like 512x1024:bfloat16 (FILE.py:MODEL)")
    t.add_argument("--target", default=None)
    t.add_argument("--budget", type=float, default=60.0, help="seconds (best so far is kept)")
    t.add_argument("--workers", type=int, default=0, help="price in N worker processes")
    t.add_argument("--dask", default=None, metavar="ADDRESS", help="a Dask scheduler to use")
    t.add_argument("--db", default=None, help="tuning database (default: the user cache dir)")
    t.add_argument("--top", type=int, default=5, help="candidates shown per group")
    t.add_argument("--csv", default=None, help="write every priced candidate as CSV")
    t.add_argument("--json", default=None, help="write the report as JSON")
    t.add_argument("--png", default=None, help="write a scatter of candidate times (matplotlib)")
    return t


def _model(spec, args, load_kernel, parse_spec):
    import neuron
    path = Path(spec.split(":")[0])
    if spec.endswith((".hlo", ".txt", ".hlo.txt")):
        return neuron.load_hlo(path), ()
    if spec.endswith((".mlir", ".mlirbc", ".bc")):
        return neuron.load_stablehlo(path), ()
    return load_kernel(spec), [parse_spec(a) for a in args]


def run(opts, load_kernel, parse_spec) -> int:
    """Run the command; ``load_kernel``/``parse_spec`` are the CLI's FILE.py:NAME and shape-spec
    readers (shared with ``neuron profile``)."""
    from concurrent.futures import ProcessPoolExecutor

    from lowering.tune import TuningDB
    fn, specs = _model(opts.model, opts.args, load_kernel, parse_spec)
    executor, client = None, None
    if opts.dask:
        import distributed
        client = distributed.Client(opts.dask)
        executor = client.get_executor()
    elif opts.workers:
        import multiprocessing
        # spawn, not fork: the parent may hold threads (jax, BLAS) that a fork would copy mid-use
        executor = ProcessPoolExecutor(opts.workers,
                                       mp_context=multiprocessing.get_context("spawn"))
    from .autotune import Autotuner
    if isinstance(fn, Autotuner):                  # a tile kernel's own knobs (@neuron.autotune)
        try:
            if executor is not None:
                fn.executor = executor
            if opts.db:
                fn.db = opts.db
            fn.tune(*specs, target=opts.target)
        finally:
            if executor is not None:
                executor.shutdown()
            if client is not None:
                client.close()
        print(fn.tuning_report())
        return 0
    bar = _progress()
    try:
        db = TuningDB(opts.db) if opts.db else None
        if specs:
            plan = fn.autotune(*specs, target=opts.target, budget_s=opts.budget,
                               executor=executor, db=db)
        else:
            plan = fn.autotune(target=opts.target, budget_s=opts.budget, executor=executor,
                               db=db, progress=bar)
    finally:
        bar.close()
        if executor is not None:
            executor.shutdown()
        if client is not None:
            client.close()
    print(plan.report(top=opts.top))
    for r in plan.results:
        if r.busy:
            print(f"  {r.key} winner per-engine busy (us): " +
                  ", ".join(f"{k} {v / 1e3:.1f}" for k, v in sorted(r.busy.items()) if v))
    if opts.csv:
        Path(opts.csv).write_text(plan.to_csv())
    if opts.json:
        Path(opts.json).write_text(plan.to_json())
    if opts.png:
        plan.save_png(opts.png)
    return 0


class _progress:
    """A tqdm bar on stderr for anything that prices more than a few candidates."""

    def __init__(self):
        try:
            from tqdm import tqdm
            self.bar = tqdm(unit="cand", desc="pricing", file=sys.stderr, leave=False,
                            mininterval=0.5)
        except ImportError:
            self.bar = None

    def __call__(self, n):
        if self.bar is not None:
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
