"""The migration report, the ``neuronxcc`` module aliases and the legacy pytest plugin."""
import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nki.legacy as lnki
from nki.legacy import isa as nisa
from nki.legacy import language as nl
from nki.legacy import report


@pytest.fixture
def reporting():
    report.clear()
    report.enable(True)
    yield report
    report.enable(None)
    report.clear()


def _band(x):
    out = nl.ndarray(x.shape, dtype=x.dtype, buffer=nl.shared_hbm)
    ip, jf = nl.mgrid[0:x.shape[0], 0:x.shape[1]]
    t = nl.load(x[ip, jf])
    b = nisa.affine_select(pred=(jf < ip + 1), on_true_tile=t, on_false_value=nl.fp32.min)
    nl.store(out[ip, jf], b * 2.0, mask=(ip < x.shape[0]))
    return out


def test_report_lists_each_construct_with_its_line_and_nki06_spelling(reporting, capsys):
    k = lnki.jit(_band)
    x = np.ones((8, 8), np.float32)
    k(x)
    got = {e.key: e for e in reporting.migration_report()}
    assert {"mgrid", "affine_select", "finfo", "operator", "mask"} <= set(got)
    assert all(e.kernel == "_band" and e.loc.startswith("test_legacy_report.py:")
               for e in got.values())
    # the affine_select entry spells the exact NKI 0.6 call for this predicate: j - p - 1 < 0
    assert got["affine_select"].new.startswith(
        "nisa.affine_select(dst=t, pattern=[[1, 8]], channel_multiplier=-1, offset=-1, "
        "cmp_op=nl.less")
    assert got["operator"].legacy == "tile operator a * b" and got["operator"].new == \
        "nl.multiply(a, b)"
    err = capsys.readouterr().err
    assert "legacy constructs in _band (port to NKI 0.6):" in err
    assert "mask= predicate" in err and "-> clip the slice instead" in err


def test_report_is_off_by_default_and_records_nothing(monkeypatch, capsys):
    monkeypatch.delenv("NEURON_EMU_LEGACY_REPORT", raising=False)
    report.clear()
    lnki.jit(_band)(np.ones((8, 8), np.float32))
    assert report.migration_report() == []
    assert "legacy constructs" not in capsys.readouterr().err


def test_the_environment_variable_turns_the_report_on(monkeypatch):
    report.clear()
    monkeypatch.setenv("NEURON_EMU_LEGACY_REPORT", "1")
    try:
        lnki.jit(_band)(np.ones((8, 8), np.float32))
        assert any(e.key == "mgrid" for e in report.migration_report())
    finally:
        report.clear()


def test_format_aligns_rows_and_says_none_when_empty():
    e1 = report.Entry("mask", "mask= predicate", "clip", "k.py:3", "k")
    e2 = report.Entry("mgrid", "nl.mgrid index expression", "slices", "kernel.py:12", "k")
    text = report.format([e1, e2], title="T")
    lines = text.splitlines()
    assert lines[0] == "T"
    assert lines[1].index("->") == lines[2].index("->")
    assert report.format([], title="T") == "T\n  (none)"
    buf = io.StringIO()
    report.enable(True)
    try:
        mark = report.begin("k")
        report.end(mark, out=buf)             # nothing recorded for k: nothing printed
    finally:
        report.enable(None)
    assert buf.getvalue() == ""


_CHILD = textwrap.dedent('''
    import sys
    import nki.legacy
    nki.legacy.install(report=True)
    import neuronxcc.nki as nki
    import neuronxcc.nki.compiler as ncc
    import neuronxcc.nki.isa as nisa
    import neuronxcc.nki.language as nl
    from neuronxcc.nki.isa.constants import dge_mode, oob_mode
    assert ncc.sbuf.mod_alloc(base_addr=0).kind == "sbuf"
    assert dge_mode.swdge is nki.isa.dge_mode.swdge
    print("ok", sys.modules["neuronxcc.nki.compiler"] is nki.compiler)
''')


def test_install_registers_compiler_and_isa_constants_and_turns_on_the_report():
    r = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok True"
