"""``tools/run_nki_library_tests.py`` on a miniature checkout laid out like nki-library's harness.

The fake harness does what the library's does in simulation mode: its conftest swaps in the
``nki_cpu_simulator.nki`` modules, sets ``NKI_NC_VERSION`` and calls
``nki.cpu_simulate(kernel)[lnc](**inputs)``; its inputs use ``neuron_dtypes.static_cast``.
"""
import os
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]

CONFTEST = '''
import sys
def pytest_addoption(parser):
    parser.addoption("--test-mode", default="simulation")
    parser.addoption("--platform-target", default="trn2")
    parser.addoption("--output-directory", default="neuron_test_output")
    parser.addini("artifacts_dir", "unused")
def pytest_configure(config):
    config.addinivalue_line("markers", "fast: fast tests")
    import nki_cpu_simulator.nki as sim_nki
    import nki_cpu_simulator.nki.language as sim_nl
    sys.modules["nki"] = sim_nki
    sys.modules["nki.language"] = sim_nl
'''

KERNELS = '''
import nki, nki.language as nl, nki.isa as nisa
def double(x):                       # undecorated, as some library wrappers are
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    t = nl.ndarray(x.shape, x.dtype, buffer=nl.sbuf)
    nisa.dma_copy(dst=t, src=x)
    nisa.tensor_scalar(dst=t, data=t, op0=nl.multiply, operand0=2.0)
    nisa.dma_copy(dst=out, src=t)
    return out
'''

TEST_GOOD = '''
import os, numpy as np, pytest, neuron_dtypes as dt, ml_dtypes
from demo_kernels import double
@pytest.mark.fast
@pytest.mark.parametrize("lnc", [1, 2])
def test_double(lnc):
    import nki
    os.environ["NKI_NC_VERSION"] = "gen3"
    x = dt.static_cast(np.arange(8, dtype=np.float32).reshape(2, 4), ml_dtypes.bfloat16)
    out = nki.cpu_simulate(double)[lnc](x=x)
    assert out.dtype == ml_dtypes.bfloat16 and dt.sizeinbytes(out.dtype) == 2
    np.testing.assert_array_equal(out.astype(np.float32), 2 * x.astype(np.float32))
def test_not_fast():
    raise AssertionError("only 'fast' tests run by default")
'''

TEST_BAD = '''
import numpy as np, pytest
from demo_kernels import double
@pytest.mark.fast
def test_wrong_golden():
    import nki
    out = nki.cpu_simulate(double)[1](x=np.ones((2, 2), np.float32))
    assert float(out[0, 0]) == 3.0, "golden mismatch: expected 3"
'''


def _checkout(tmp_path, only=None):
    """A small library checkout: two test files, or only ``only`` = {file name: text}."""
    root = tmp_path / "nki-library"
    (root / "src").mkdir(parents=True)
    (root / "src" / "demo_kernels.py").write_text(KERNELS)
    d = root / "test" / "integration" / "core"
    d.mkdir(parents=True)
    (root / "test" / "conftest.py").write_text(CONFTEST)
    for name, text in (only if only is not None else
                       {"test_double.py": TEST_GOOD, "test_broken.py": TEST_BAD}).items():
        (d / name).write_text(text)
    return root


def _run(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("NEURON_PLATFORM_TARGET_OVERRIDE", None)
    return subprocess.run([sys.executable, str(REPO / "tools" / "run_nki_library_tests.py"),
                           *map(str, args), "--no-deps-check"], env=env, capture_output=True,
                          text=True, timeout=300)


def test_runner_reports_pass_and_fail_per_kernel(tmp_path):
    root = _checkout(tmp_path)
    out = _run(root, "--json", tmp_path / "r.json")
    lines = out.stdout.splitlines()
    assert out.returncode == 1, out.stdout + out.stderr
    row = {ln.split()[0]: ln.split()[1:] for ln in lines[1:] if ln.startswith("core/")}
    assert row["core/double"][:3] == ["2", "0", "0"], out.stdout
    assert row["core/broken"][:3] == ["0", "1", "0"], out.stdout
    assert "golden mismatch: expected 3" in " ".join(row["core/broken"])
    assert "kernels with every run test passing: 1/2 (50%); tests: 2/3 passed" in out.stdout
    import json
    res = json.loads((tmp_path / "r.json").read_text())
    assert sorted(v["outcome"] for v in res.values()) == ["failed", "passed", "passed"]


def test_runner_refuses_a_path_that_is_not_a_checkout(tmp_path):
    out = _run(tmp_path)
    assert out.returncode == 2 and "does not look like an nki-library checkout" in out.stderr


TEST_ENV = '''
import os, pytest
@pytest.mark.fast
def test_blas_threads():
    assert os.environ.get("OPENBLAS_NUM_THREADS") == "1", os.environ.get("OPENBLAS_NUM_THREADS")
    assert os.environ.get("OMP_NUM_THREADS") == "3", os.environ.get("OMP_NUM_THREADS")
'''


def test_runner_gives_each_test_process_one_blas_thread_unless_told(tmp_path, monkeypatch):
    root = _checkout(tmp_path, only={"test_env.py": TEST_ENV})
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")            # the user's own choice is kept
    out = _run(root)
    assert out.returncode == 0 and "tests: 1/1 passed" in out.stdout, out.stdout + out.stderr


TEST_ARTIFACTS = '''
import os, pytest
@pytest.mark.fast
def test_writes_an_artifact(request):
    out = request.config.getoption("--output-directory")
    assert os.path.isabs(out), out
    os.makedirs(out, exist_ok=True)
    open(os.path.join(out, "big.bin"), "wb").write(b"x" * 1000)
    slow = os.environ.get("NKILIB_SIMULATION_RUN_ALL")
    assert (slow or "unset") == os.environ["EXPECT_SLOW"], slow
'''


def test_runner_keeps_artifacts_out_of_the_checkout_and_passes_include_slow(tmp_path,
                                                                           monkeypatch):
    root = _checkout(tmp_path, only={"test_art.py": TEST_ARTIFACTS})
    monkeypatch.setenv("EXPECT_SLOW", "unset")
    monkeypatch.delenv("NKILIB_SIMULATION_RUN_ALL", raising=False)
    out = _run(root)
    assert out.returncode == 0 and "tests: 1/1 passed" in out.stdout, out.stdout + out.stderr
    monkeypatch.setenv("EXPECT_SLOW", "1")
    out = _run(root, "--include-slow")
    assert out.returncode == 0 and "tests: 1/1 passed" in out.stdout, out.stdout + out.stderr
    assert not (root / "neuron_test_output").exists()          # a temporary folder, removed
    keep = tmp_path / "kept"
    out = _run(root, "--include-slow", "--keep-artifacts", keep)
    assert out.returncode == 0 and (keep / "big.bin").stat().st_size == 1000


TEST_KILLED = '''
import os, signal, pytest
@pytest.mark.fast
def test_ok():
    pass
@pytest.mark.fast
def test_dies():
    os.kill(os.getpid(), signal.SIGKILL)       # as the OOM killer would
'''


def test_runner_reports_a_test_whose_process_was_killed(tmp_path):
    root = _checkout(tmp_path, only={"test_killed.py": TEST_KILLED})
    out = _run(root, "-j", "2")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "the test process died (killed by the OS" in out.stdout, out.stdout
    assert "tests: 1/2 passed" in out.stdout, out.stdout


TEST_TRACE_ONLY = '''
import pytest
@pytest.mark.fast
@pytest.mark.trace_only
def test_shape_check():
    pass
@pytest.mark.fast
def test_plain():
    pass
'''


def test_runner_leaves_trace_only_tests_out_unless_asked(tmp_path):
    root = _checkout(tmp_path, only={"test_views.py": TEST_TRACE_ONLY})
    out = _run(root, "--json", tmp_path / "a.json")
    assert out.returncode == 0 and "tests: 1/1 passed" in out.stdout, out.stdout + out.stderr
    import json
    res = json.loads((tmp_path / "a.json").read_text())
    skipped = [v for k, v in res.items() if k.endswith("test_shape_check")]
    assert skipped and skipped[0]["outcome"] == "skipped"
    assert "no simulation configuration" in skipped[0]["message"]
    out = _run(root, "--trace-only")
    assert out.returncode == 0 and "tests: 2/2 passed" in out.stdout, out.stdout + out.stderr


FRAMEWORK = '''
class UnitTestFramework:
    """The public 2026-04-13 harness's signature: no ``trace_only`` argument."""
    def __init__(self, test_manager, kernel_entry, torch_ref, kernel_input_generator,
                 output_tensor_descriptor, check_unused_params=False, collector=None):
        self.kernel_entry = kernel_entry
    def run_test(self, test_config, compiler_args, rtol=1e-5, atol=1e-8):
        raise AssertionError("the full simulation path ran")
'''

TEST_TRACE_ONLY_ARG = '''
import numpy as np, pytest
import nki.language as nl, nki.isa as nisa
from demo_kernels import double
from test.utils.unit_test_framework import UnitTestFramework

class Args:
    def __init__(self, lnc):
        self.logical_nc_config, self.platform_target = lnc, "trn2"

def from_psum(x):
    out = nl.ndarray(x.shape, x.dtype, buffer=nl.shared_hbm)
    p = nl.ndarray(x.shape, x.dtype, buffer=nl.psum)
    nisa.dma_copy(dst=out, src=p)            # DMA cannot read PSUM: the trace must refuse it
    return out

@pytest.mark.fast
@pytest.mark.parametrize("lnc", [1, 2])
def test_traces(lnc):
    UnitTestFramework(test_manager=None, kernel_entry=double, trace_only=True,
                      kernel_input_generator=lambda _: {"x": np.ones((4, 8), np.float32)}
                      ).run_test(test_config=None, compiler_args=Args(lnc))

@pytest.mark.fast
def test_a_kernel_that_breaks_a_rule_fails():
    UnitTestFramework(test_manager=None, kernel_entry=from_psum, trace_only=True,
                      kernel_input_generator=lambda _: {"x": np.ones((4, 8), np.float32)}
                      ).run_test(test_config=None, compiler_args=Args(1))

@pytest.mark.fast
def test_without_trace_only_the_harness_runs_as_before():
    with pytest.raises(AssertionError, match="the full simulation path ran"):
        UnitTestFramework(None, double, None, None, None).run_test(None, Args(1))
'''


def test_trace_only_frameworks_trace_the_kernel_and_run_nothing(tmp_path):
    """The newest harness's ``UnitTestFramework(..., trace_only=True)`` (compile-only tests of
    kernels that return unordered index sets) traces the kernel with this project's front end."""
    root = _checkout(tmp_path, only={})
    d = root / "test" / "integration" / "core"
    (root / "test" / "__init__.py").write_text("")
    (root / "test" / "utils").mkdir()
    (root / "test" / "utils" / "__init__.py").write_text("")
    (root / "test" / "utils" / "unit_test_framework.py").write_text(FRAMEWORK)
    (d / "test_trace.py").write_text(TEST_TRACE_ONLY_ARG)
    out = _run(root, "--json", tmp_path / "r.json")
    import json
    res = {k.split("::")[-1]: v for k, v in json.loads((tmp_path / "r.json").read_text()).items()}
    assert res["test_traces[1]"]["outcome"] == "passed", out.stdout + out.stderr
    assert res["test_traces[2]"]["outcome"] == "passed", out.stdout + out.stderr
    assert res["test_without_trace_only_the_harness_runs_as_before"]["outcome"] == "passed"
    bad = res["test_a_kernel_that_breaks_a_rule_fails"]
    assert bad["outcome"] == "failed" and "PSUM" in bad["message"], bad
