"""Run two public legacy-API test suites against this package and print the counts.

Nothing is fetched: give LOCAL checkouts.

    python tools/run_peer_suites.py --sdk ~/src/aws-neuron-sdk --samples ~/src/nki-samples

- ``--sdk``: aws-neuron-sdk; runs ``nki/test/test_nki_*.py`` (and the two allocator tests beside
  them) under ``nki.legacy.install()``.
- ``--samples``: nki-samples (the tests need commit 3a99c91 or another with ``test/unit`` and the
  legacy reference kernels); runs ``test/unit`` with ``--simulation-only`` and then its perf tests
  (``-k perf``), listing our MODELLED latency for each against the test's budget (measured on
  hardware by the sample authors).

Each suite runs in a fresh ``python -m pytest`` with ``-p nki.legacy.pytest_plugin`` (the
``neuronxcc`` alias must exist before collection) and ``-p peer_suite_plugin`` (this directory:
it records outcomes and latencies). The target defaults to trn2 (``--target``), set through
``NEURON_PLATFORM_TARGET_OVERRIDE``. ``--report`` turns on the legacy migration report.
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.dirname(os.path.abspath(__file__))


def run_pytest(cwd, args, pythonpath, target, jobs, report, extra_env=None):
    """One pytest run in a subprocess; returns its JSON-line records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "results")
        env = dict(os.environ, **(extra_env or {}))
        env["PYTHONPATH"] = os.pathsep.join([ROOT, TOOLS] + pythonpath +
                                            [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env["NEURON_PLATFORM_TARGET_OVERRIDE"] = target
        env["PEER_SUITE_RESULTS"] = out
        if report:
            env["NEURON_EMU_LEGACY_REPORT"] = "1"
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "nki.legacy.pytest_plugin",
               "-p", "peer_suite_plugin", "-p", "no:cacheprovider", "--tb=short"]
        if jobs > 1:
            cmd += ["-n", str(jobs)]
        t0 = time.time()
        proc = subprocess.run(cmd + args, cwd=cwd, env=env, capture_output=True, text=True)
        dt = time.time() - t0
        recs = []
        for f in sorted(glob.glob(out + ".*")):
            with open(f) as fh:
                recs += [json.loads(line) for line in fh if line.strip()]
        if not recs and proc.returncode not in (0, 1):
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        return recs, dt, proc


def summarise(title, recs, dt):
    counts = collections.Counter(r["outcome"] for r in recs)
    ok = counts["passed"] + counts["xfailed"] + counts["xpassed"]
    print(f"\n== {title}: {ok}/{len(recs)} as expected "
          f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}) in {dt:.0f} s")
    for r in recs:
        if r["outcome"] in ("failed", "error"):
            print(f"  FAIL {r['test']}\n       {r['reason']}")
    return ok, len(recs)


def latency_table(recs):
    print("\n  modelled latency vs the suite's budget (budgets measured on hardware):")
    for r in recs:
        budgets = {k: v for k, v in r["params"].items() if "latency" in k}
        lat = [b["latency_us"] for b in r["benchmarks"]]
        got = ", ".join(f"{x:.1f} us" for x in lat) or "(no benchmark ran)"
        bud = ", ".join(f"{k}={v}" for k, v in budgets.items()) or "-"
        print(f"  {r['outcome']:<7} {r['test'].split('::')[-1]}\n          modelled {got}; "
              f"budget {bud}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdk", help="local checkout of aws-neuron/aws-neuron-sdk")
    ap.add_argument("--samples", help="local checkout of aws-neuron/nki-samples (commit 3a99c91)")
    ap.add_argument("--target", default="trn2", help="emulated target (default trn2)")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="pytest-xdist workers (default 2)")
    ap.add_argument("--no-perf", action="store_true", help="skip the nki-samples perf tests")
    ap.add_argument("--report", action="store_true", help="print the legacy migration report")
    ap.add_argument("--perf-max-instructions", type=int, default=5_000_000,
                    help="NEURON_EMU_MAX_INSTRUCTIONS for the perf tests (default 5,000,000): the "
                         "32K-token flash-attention shapes unroll to more than the interactive "
                         "default of 500,000 (about 1.7 GB and a few minutes each)")
    a = ap.parse_args(argv)
    if not (a.sdk or a.samples):
        ap.error("give --sdk and/or --samples (local checkout paths)")
    totals = []
    if a.sdk:
        tdir = os.path.join(a.sdk, "nki", "test")
        recs, dt, _ = run_pytest(tdir, ["."], [], a.target, a.jobs, a.report)
        totals.append(("aws-neuron-sdk nki/test", *summarise("aws-neuron-sdk nki/test", recs, dt)))
    if a.samples:
        tdir = os.path.join(a.samples, "test", "unit")
        src = [os.path.join(a.samples, "src")]
        recs, dt, _ = run_pytest(tdir, ["--simulation-only", "."], src, a.target, a.jobs,
                                 a.report)
        totals.append(("nki-samples test/unit --simulation-only",
                       *summarise("nki-samples test/unit --simulation-only", recs, dt)))
        if not a.no_perf:
            limit = {"NEURON_EMU_MAX_INSTRUCTIONS": str(a.perf_max_instructions)}
            recs, dt, _ = run_pytest(tdir, ["-k", "perf", "."], src, a.target, a.jobs, False,
                                     extra_env=limit)
            totals.append(("nki-samples perf tests",
                           *summarise("nki-samples perf tests (-k perf)", recs, dt)))
            latency_table(recs)
    print("\n== totals")
    for name, ok, n in totals:
        print(f"  {name}: {ok}/{n}")
    return 0 if all(ok == n for _, ok, n in totals) else 1


if __name__ == "__main__":
    sys.exit(main())
