"""Run one fuzz case and classify it; run many in worker processes that may hang or crash.

Outcomes: ``ok`` (imported; the emulator agrees with the graph reference, or the program was too
big to feed and was only priced), ``refused`` (one of our errors: HloImportError and subclasses,
NeuronError and subclasses), ``unvalidated`` (one of our errors, but raised by an importer's
catch-all that turns an unexpected exception into a located error: a missing explicit check), ``foreign`` (any other exception: a bug), ``mismatch`` (emulator and
reference differ beyond tolerance: a wrong answer), ``hang`` (no answer within the case timeout),
``crash`` (the worker process died: a segfault or abort in native code).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import traceback

import numpy as np

# Small budgets so that oversize mutants are refused in milliseconds (device/settings.py knobs).
FUZZ_ENV = {"NEURON_EMU_HOST_MEMORY": "512M", "NEURON_EMU_MAX_INSTRUCTIONS": "50000",
            "NEURON_EMU_MAX_LOOP_TRIPS": "100000", "NEURON_EMU_LOOP_SECONDS": "10",
            "NEURON_EMU_MAX_CONSTANT_ELEMENTS": "4000000", "NEURON_EMU_MAX_UNROLL": "100000",
            "NEURON_EMU_WARN_UNINIT": "0",
            "NEURON_FUZZ_SPECIAL_FLOATS": "0.05"}   # NaN/inf/-0 among the float inputs
FEED_LIMIT = 1 << 20          # elements of all parameters together that the harness will make


def _project_errors():
    from device.errors import NeuronError
    from lowering import HloImportError
    return (NeuronError, HloImportError)


def _inputs(graph, rng):
    """Random arguments for ``graph``: integers with their edge values mixed in; floats standard
    normal, with a fraction NEURON_FUZZ_SPECIAL_FLOATS (default 0) of NaN/inf/-0 values."""
    special = float(os.environ.get("NEURON_FUZZ_SPECIAL_FLOATS") or 0)
    xs = []
    for p in graph.params:
        t = p.type
        dt = t.np_dtype
        if t.dtype == "bool":
            xs.append(rng.integers(0, 2, t.shape).astype(bool))
        elif dt.kind in "iu":
            info = np.iinfo(dt)
            edge = np.array([info.min, info.max, 0, 1, -1 if dt.kind == "i" else 2], dt)
            v = rng.integers(max(info.min, -100), min(info.max, 100) + 1, t.shape).astype(dt)
            mask = rng.random(t.shape) < 0.2               # edge values in the type itself (u64
            v[mask] = rng.choice(edge, int(mask.sum()))    # max does not fit an int64)
            xs.append(v)
        else:
            v = rng.standard_normal(t.shape).astype(np.float32)
            if special:                         # NaN, infinities, signed zeros
                # (no huge finite values: a finite product overflowing fp32 inside a dot is
                # implementation-defined -- FMA and summation order decide inf, NaN or a finite
                # sum, in XLA as in BLAS -- so no reference can judge it)
                edge = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0], np.float32)
                v = np.where(rng.random(t.shape) < special, rng.choice(edge, t.shape), v)
            xs.append(v.astype(dt))
    return xs


def _same(got, ref, dtype):
    got, ref = np.asarray(got), np.asarray(ref)
    if got.shape != ref.shape:
        return False, f"shape {got.shape} vs {ref.shape}"
    if ref.dtype.kind in "iub":
        bad = got.astype(np.int64) != ref.astype(np.int64)
        return (not bad.any()), f"{int(bad.sum())} of {bad.size} integer elements differ"
    g, r = got.astype(np.float64), ref.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(r)
    tol = 2e-2 if dtype in ("bfloat16", "float16") or np.dtype(ref.dtype).itemsize < 4 else 2e-3
    close = np.isclose(g, r, rtol=tol, atol=tol) | both_nan | (g == r)
    return bool(close.all()), f"{int((~close).sum())} of {close.size} differ (tol {tol})"


def run_case(kind: str, payload, seed: int = 0) -> dict:
    """Import ``payload`` (HLO text, StableHLO text or bytecode) and, if it imports, run it."""
    import neuron
    ours = _project_errors()
    try:
        f = neuron.load_hlo(payload) if kind == "hlo" else neuron.load_stablehlo(payload)
        g = f.graph
        if sum(int(np.prod(p.type.shape)) for p in g.params) > FEED_LIMIT:
            f.profile()
            return {"status": "ok", "detail": "priced only (inputs too big to feed)"}
        xs = _inputs(g, np.random.default_rng(seed))
        got = f(*xs)
        ref = f.reference(*xs)
        got = got if isinstance(got, tuple) else (got,)
        ref = ref if isinstance(ref, tuple) else (ref,)
        for k, (a, b, v) in enumerate(zip(got, ref, g.outputs)):
            ok, why = _same(a, b, v.type.dtype)
            if not ok:
                return {"status": "mismatch", "detail": f"output {k} ({v.type}): {why}"}
        return {"status": "ok", "detail": ""}
    except ours as e:
        # refused, but only by the importers' catch-all (no explicit check named the problem)
        status = "unvalidated" if getattr(e, "unvalidated", False) else "refused"
        return {"status": status, "detail": f"{type(e).__name__}: {str(e)[:200]}",
                "where": _where(e) if status == "unvalidated" else None}
    except RecursionError as e:
        return {"status": "foreign", "detail": f"RecursionError: {str(e)[:200]}",
                "where": _where(e)}
    except Exception as e:                       # noqa: BLE001 -- classifying is the point
        return {"status": "foreign", "detail": f"{type(e).__name__}: {str(e)[:200]}",
                "where": _where(e)}


def _where(e):
    tb = traceback.extract_tb(e.__traceback__)
    ours = [f for f in tb if "/tests/" not in f.filename]
    f = (ours or tb)[-1]
    return f"{os.path.basename(f.filename)}:{f.lineno} {f.name}"


# ---- isolated workers ---------------------------------------------------------------------------
def _worker(conn):
    os.environ.update(FUZZ_ENV)
    import warnings
    warnings.simplefilter("ignore")
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(run_case(*job))


class Pool:
    """One worker process at a time per slot; a hang or a crash costs a restart, not the run."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self.ctx = mp.get_context("spawn")
        self.proc = None

    def _start(self):
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()
        self.conn = parent

    def run(self, kind, payload, seed) -> dict:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((kind, payload, seed))
        # bytecode is first deserialized in a checking subprocess (a fresh jax import)
        timeout = self.timeout + (60 if isinstance(payload, bytes) else 0)
        try:
            ready = self.conn.poll(timeout)
            if ready:
                return self.conn.recv()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            ready = True
        if not ready:
            self.proc.kill()
            self.proc.join()
            self.proc = None
            return {"status": "hang", "detail": f"no answer in {timeout:g} s"}
        self.proc.join(5)
        code = self.proc.exitcode
        self.proc = None
        return {"status": "crash", "detail": f"worker died with exit code {code}"}

    def close(self):
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(5)
            if self.proc.is_alive():
                self.proc.kill()
