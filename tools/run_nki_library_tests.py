#!/usr/bin/env python
"""Run the NKI library's own simulation tests against this project's ``nki``; report per kernel.

Give it a LOCAL checkout of aws-neuron/nki-library (nothing is fetched). It runs the library's
pytest harness in its ``--test-mode simulation`` mode, where the harness calls
``nki.cpu_simulate(kernel)[lnc](**inputs)`` with ``NKI_NC_VERSION`` set, and compares each output
with the library's own reference (torch goldens, its comparators and tolerances). The adapter
plugin ``tools/nkilib_plugin.py`` maps the harness's simulator imports onto our ``nki``.

    python tools/run_nki_library_tests.py /path/to/nki-library            # the 'fast' tests
    python tools/run_nki_library_tests.py /path/to/nki-library --all -j 2 --json out.json
    python tools/run_nki_library_tests.py CHECKOUT -k cumsum --platform-target trn2

The harness needs the library's test requirements (its ``test`` extra: torch, boto3, fabric2,
aws-embedded-metrics, pytest-html, plotext, allpairspy, filelock, pandas); install them in the
running environment, or point ``--site DIR`` at a ``pip install --target DIR`` of them. The
``neuron_dtypes`` package the harness imports is private; the plugin provides a stand-in.

Output: one line per kernel (test file): passed / failed / skipped counts and the first failure
reason, then the share of kernels whose every run test passed.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NEEDED = ("torch", "boto3", "fabric2", "aws_embedded_metrics", "pytest_html", "plotext",
          "allpairspy", "filelock")


def _missing(env) -> list:
    code = ("import importlib.util, sys; print(','.join(m for m in sys.argv[1:] "
            "if importlib.util.find_spec(m) is None))")
    out = subprocess.run([sys.executable, "-c", code, *NEEDED], env=env, capture_output=True,
                         text=True)
    return [m for m in out.stdout.strip().split(",") if m]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkout", help="path of a local nki-library checkout")
    ap.add_argument("paths", nargs="*", help="test files or folders under the checkout "
                    "(default: test/integration)")
    ap.add_argument("--all", action="store_true", help="run every simulation test, not only "
                    "the ones marked 'fast'")
    ap.add_argument("-k", default=None, help="pytest -k expression")
    ap.add_argument("-j", "--jobs", type=int, default=1, help="pytest-xdist workers")
    ap.add_argument("--platform-target", default="trn2", help="trn1 | trn2 | trn3")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per test")
    ap.add_argument("--max-per-kernel", type=int, default=0, help="run at most N tests per test "
                    "file (the first N runnable ones; 0 = all selected)")
    ap.add_argument("--site", action="append", default=[], help="extra import path(s) for the "
                    "harness's requirements")
    ap.add_argument("--json", default=None, help="write the per-test results here")
    ap.add_argument("--verbose", action="store_true", help="show pytest's own output")
    ap.add_argument("--zero-fill", action="store_true", help="new on-chip tensors hold zeros "
                    "(NEURON_EMU_FILL=zero) as in the library's own simulator, whose goldens "
                    "expect never-written padding to read 0; by default they hold NaN / 4")
    ap.add_argument("--include-slow", action="store_true", help="also run the configurations "
                    "the library's simulation mode skips as slow (NKILIB_SIMULATION_RUN_ALL=1)")
    ap.add_argument("--trace-only", action="store_true", help="also run the tests marked "
                    "trace_only (shape/stride checks the library runs under its compiler's tracer): "
                    "here they run on the emulator and pass when every kernel_assert holds")
    ap.add_argument("--keep-artifacts", default=None, metavar="DIR", help="keep the harness's "
                    "per-test artifacts in DIR (by default they go to a temporary folder that is "
                    "removed: a full run writes tens of GB)")
    ap.add_argument("--no-deps-check", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    root = Path(a.checkout).resolve()
    if not (root / "test" / "conftest.py").is_file() or not (root / "src").is_dir():
        print(f"error: {root} does not look like an nki-library checkout (no test/conftest.py "
              f"or src/)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    paths = [str(HERE), str(REPO), str(root / "src"), str(root), *a.site]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    missing = [] if a.no_deps_check else _missing(env)
    if missing:
        print(f"error: the library's test harness needs {', '.join(missing)}: install its test "
              f"requirements (pip install torch boto3 fabric2 aws-embedded-metrics pytest-html "
              f"plotext allpairspy filelock pandas), or pass --site DIR", file=sys.stderr)
        return 2
    tmp = tempfile.mkdtemp(prefix="nkilib-results-")
    env["NKILIB_RESULTS"] = os.path.join(tmp, "results")
    env["NKILIB_TEST_TIMEOUT"] = str(a.timeout)
    env["NKILIB_MAX_PER_FILE"] = str(a.max_per_kernel)
    if a.include_slow:
        env["NKILIB_SIMULATION_RUN_ALL"] = "1"
    if a.zero_fill:
        env["NEURON_EMU_FILL"] = "zero"
    if a.trace_only:
        env["NKILIB_RUN_TRACE_ONLY"] = "1"
    artifacts = a.keep_artifacts or os.path.join(tmp, "artifacts")
    env.pop("NEURON_PLATFORM_TARGET_OVERRIDE", None)       # the harness sets NKI_NC_VERSION
    # One BLAS thread per test process: the emulator's matmuls are at most 128x512, too small
    # for BLAS threads to pay off, and on a busy machine idle-spinning threads made a
    # 128x128x512 fp64 product ~20x slower (40 ms instead of 1.8 ms wall, 2 shared cores).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    cmd = [sys.executable, "-m", "pytest", *(a.paths or ["test/integration"]),
           "--test-mode", "simulation", "--platform-target", a.platform_target,
           "-p", "nkilib_plugin", "-p", "no:cacheprovider", "-q", "--no-header", "-rN",
           "-o", "addopts=", "--continue-on-collection-errors",
           "--output-directory", os.path.abspath(artifacts)]
    if not a.all:
        cmd += ["-m", "fast"]
    if a.k:
        cmd += ["-k", a.k]
    if a.jobs > 1:
        cmd += ["-n", str(a.jobs)]
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, text=True,
                              stdout=None if a.verbose else subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        results: dict = {}
        for f in glob.glob(os.path.join(tmp, "results.*.json")):
            results.update(json.load(open(f)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not results:
        print((proc.stdout or "")[-4000:])
        print("error: no test ran (see pytest's output above)", file=sys.stderr)
        return 1
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1, sort_keys=True))
    rc = report(results)
    if proc.returncode < 0:         # the OS killed pytest itself: later tests never ran
        print(f"\nwarning: pytest was killed by signal {-proc.returncode} (out of host memory?); "
              f"the tests after the last one listed did not run")
        rc = 1
    return rc


def kernel_of(nodeid: str) -> str:
    f = nodeid.split("::")[0]
    name = Path(f).stem
    return f"{Path(f).parent.name}/{name[5:] if name.startswith('test_') else name}"


def report(results: dict) -> int:
    per = defaultdict(lambda: defaultdict(int))
    why: dict = {}
    for nodeid, r in sorted(results.items()):
        k = kernel_of(nodeid)
        out = r["outcome"]
        per[k][out] += 1
        if out in ("failed", "error") and k not in why:
            why[k] = r["message"]
    width = max(len(k) for k in per)
    print(f"{'kernel (test file)':<{width}}  pass  fail  skip  first failure")
    ran = ok = 0
    for k in sorted(per):
        c = per[k]
        bad = c["failed"] + c["error"]
        print(f"{k:<{width}}  {c['passed']:>4}  {bad:>4}  {c['skipped']:>4}  {why.get(k, '')[:150]}")
        if c["passed"] + bad:
            ran += 1
            ok += bad == 0
    tests = sum(sum(c[o] for o in ("passed", "failed", "error")) for c in per.values())
    passed = sum(c["passed"] for c in per.values())
    print(f"\nkernels with every run test passing: {ok}/{ran} ({100.0 * ok / max(ran, 1):.0f}%); "
          f"tests: {passed}/{tests} passed")
    return 0 if ok == ran else 1


if __name__ == "__main__":
    sys.exit(main())
