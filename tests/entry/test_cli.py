"""The ``neuron`` CLI: one-line errors with exit code 1, listed choices, script arguments,
``neuron import`` for HLO text and StableHLO text/bytecode with PASS/FAIL and exit codes."""
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from neuron.cli import main

ROOT = Path(__file__).resolve().parents[2]

KERNELS = textwrap.dedent('''
    import nki, nki.language as nl, nki.isa as nisa

    @nki.jit
    def add(a, b):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        ta, tb = nl.load(a), nl.load(b)
        nl.store(out, nl.add(ta, tb))
        return out

    @nki.jit
    def too_many_partitions(a):
        out = nl.ndarray(a.shape, a.dtype, buffer=nl.shared_hbm)
        t = nl.ndarray((256, 64), a.dtype, buffer=nl.sbuf)
        nisa.dma_copy(dst=t, src=a)
        nisa.dma_copy(dst=out, src=t)
        return out
''')


@pytest.fixture
def kfile(tmp_path):
    p = tmp_path / "kernels.py"
    p.write_text(KERNELS)
    return p


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_kernel_is_one_line_and_exit_1(capsys, kfile):
    code, out, err = _cli(capsys, "profile", f"{kfile}:missing", "128x64:float32")
    assert code == 1 and out == ""
    assert err == f"neuron: error: {kfile} has no kernel named 'missing' (its @nki.jit kernels: " \
                  f"add, too_many_partitions)\n"


def test_missing_file(capsys):
    code, _, err = _cli(capsys, "profile", "nope.py:k", "1:float32")
    assert code == 1 and err == "neuron: error: no such file: nope.py\n"


def test_kernel_rule_error_is_the_rule_message_without_traceback(capsys, kfile):
    code, _, err = _cli(capsys, "profile", f"{kfile}:too_many_partitions", "256x64:float32")
    assert code == 1
    assert err.startswith("neuron: error: partition-limit: tensor ")
    assert "at kernels.py:14" in err and "Traceback" not in err and "nki/tracing.py" not in err


def test_spec_without_dtype_is_an_error(capsys, kfile):
    code, _, err = _cli(capsys, "profile", f"{kfile}:add", "128x64", "128x64:float32")
    assert code == 1
    assert "argument spec '128x64' has no dtype; write it as SHAPE:DTYPE, e.g. 128x64:float32" in err
    code, _, err = _cli(capsys, "profile", f"{kfile}:add", "128x64:float33", "128x64:float32")
    assert code == 1 and "unknown dtype 'float33'" in err and "bfloat16" in err


def test_bad_target_lists_the_choices_and_exits_1(capsys, kfile):
    with pytest.raises(SystemExit) as e:
        main(["profile", f"{kfile}:add", "128x64:float32", "128x64:float32", "--target", "trn9"])
    err = capsys.readouterr().err
    assert e.value.code == 1
    assert "invalid choice: 'trn9' (choose from 'trn1', 'inf2'" in err and "'trn3'" in err


def test_profile_writes_trace_and_png(capsys, kfile, tmp_path):
    code, out, _ = _cli(capsys, "profile", f"{kfile}:add", "128x64:float32", "128x64:float32",
                        "--trace", tmp_path / "t.json", "--png", tmp_path / "t.png", "--target", "trn2")
    assert code == 0 and "(MODELLED" in out and "on trn2" in out
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "t.json").stat().st_size > 100


def test_run_passes_script_arguments_and_exit_code(capsys, tmp_path):
    s = tmp_path / "s.py"
    s.write_text("import sys\nprint('argv', sys.argv[1:])\nsys.exit(int(sys.argv[-1]))\n")
    with pytest.raises(SystemExit) as e:
        main(["run", str(s), "--flag", "x", "3"])
    assert e.value.code == 3
    assert capsys.readouterr().out == "argv ['--flag', 'x', '3']\n"


def test_run_reports_a_kernel_error_in_one_message(capsys, tmp_path, kfile):
    s = tmp_path / "s.py"
    s.write_text("import numpy as np\nfrom kernels import too_many_partitions\n"
                 "too_many_partitions(np.ones((256, 64), np.float32))\n")
    sys.path.insert(0, str(tmp_path))
    try:
        code, _, err = _cli(capsys, "run", s)
    finally:
        sys.path.remove(str(tmp_path))
    assert code == 1 and err.startswith("neuron: error: partition-limit:") and "Traceback" not in err


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    jax = pytest.importorskip("jax")            # the [jax] extra; the test extra includes it
    import jax.numpy as jnp
    d = tmp_path_factory.mktemp("models")
    x, w = np.ones((128, 256), np.float32), np.ones((256, 64), np.float32)
    lo = jax.jit(lambda x, w: jnp.exp(x @ w * 0.01)).lower(x, w)
    (d / "m.hlo.txt").write_text(lo.as_text(dialect="hlo"))
    (d / "m.mlir").write_text(lo.as_text())
    from jax import export
    exp = export.export(jax.jit(lambda x, w: jnp.tanh(x @ w)))(x, w)
    (d / "m.mlirbc").write_bytes(exp.mlir_module_serialized)
    (d / "bad.hlo").write_text("HloModule bad\nENTRY e {\n  p = f32[4] parameter(0)\n"
                               "  ROOT r = f32[4] frobnicate(p)\n}\n")
    return d


@pytest.mark.parametrize("name", ["m.hlo.txt", "m.mlir", "m.mlirbc"])
def test_import_reports_relative_and_ulp_error_and_passes(capsys, models, name):
    code, out, _ = _cli(capsys, "import", models / name)
    assert code == 0
    line = [ln for ln in out.splitlines() if ln.startswith("  output 0 float32[128, 64]: ")][0]
    assert "PASS: relative error " in line and "(tolerance 0.0001 for float32), worst " in line
    assert " ULP, max abs error " in line
    assert out.rstrip().endswith(f"PASS: {models / name}")


def test_import_fails_with_exit_1_when_outside_tolerance(capsys, models):
    # the emulator may match the reference exactly (a batched matmul is one BLAS call, as in
    # NumPy), so only a negative tolerance is sure to fail
    code, out, _ = _cli(capsys, "import", models / "m.hlo.txt", "--rtol", "-1")
    assert code == 1 and out.rstrip().endswith(f"FAIL: {models / 'm.hlo.txt'}")
    assert "FAIL: relative error" in out


def test_import_of_a_bad_file_exits_1(capsys, models):
    code, out, err = _cli(capsys, "import", models / "bad.hlo")
    assert code == 1
    assert err == ("neuron: error: unsupported HLO opcode 'frobnicate' in instruction 'r' (line 4)\n"
                   "  ROOT r = f32[4] frobnicate(p)\n")
