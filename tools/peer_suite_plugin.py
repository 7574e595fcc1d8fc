"""pytest plugin used by ``tools/run_peer_suites.py`` (not by our own test suite).

- ``get_target_string()`` helpers in the peer tests read the EC2 instance type from
  ``/sys/devices/virtual/dmi/id/product_name`` to decide whether to run; on the emulator the
  "instance" is the emulated target, so such module-level helpers are replaced to return
  ``NEURON_PLATFORM_TARGET_OVERRIDE`` (the runner always sets it).
- Every test's outcome, the first line of its failure, its parameters and the modelled latencies
  of the ``nki.benchmark`` calls it made are appended as JSON lines to ``$PEER_SUITE_RESULTS``.
"""
import json
import os

import pytest


def pytest_collection_modifyitems(session, config, items):
    target = os.environ.get("NEURON_PLATFORM_TARGET_OVERRIDE", "")
    for item in items:
        mod = getattr(item, "module", None)
        if mod is not None and callable(getattr(mod, "get_target_string", None)):
            mod.get_target_string = lambda: target


def _results():
    from nki.legacy import bench
    return bench.RESULTS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if call.when == "setup":
        item._peer_mark = len(_results())
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        _write(item, rep)


def _write(item, rep):
    path = os.environ.get("PEER_SUITE_RESULTS")
    if not path:
        return
    outcome = rep.outcome
    if hasattr(rep, "wasxfail"):
        outcome = "xfailed" if rep.skipped else "xpassed"
    reason = ""
    if rep.failed and call_excinfo(rep):
        reason = call_excinfo(rep)
    params = {}
    cs = getattr(item, "callspec", None)
    if cs is not None:
        params = {k: repr(v) if not isinstance(v, (int, float, str)) else v
                  for k, v in cs.params.items()}
    bench = _results()[getattr(item, "_peer_mark", 0):]
    with open(f"{path}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", "a") as f:
        f.write(json.dumps({"test": item.nodeid, "outcome": outcome, "reason": reason,
                            "params": params, "benchmarks": bench}) + "\n")


def call_excinfo(rep):
    text = str(getattr(rep, "longrepr", "") or "")
    lines = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ")]
    return lines[0][:300] if lines else text.splitlines()[-1][:300] if text else ""


def pytest_collectreport(report):
    path = os.environ.get("PEER_SUITE_RESULTS")
    if path and report.failed:
        with open(f"{path}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}", "a") as f:
            f.write(json.dumps({"test": report.nodeid, "outcome": "error",
                                "reason": call_excinfo(report), "params": {},
                                "benchmarks": []}) + "\n")
