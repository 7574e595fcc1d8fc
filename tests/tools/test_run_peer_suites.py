"""tools/run_peer_suites.py on small stand-in checkouts written here (no third-party code).

This also exercises ``-p nki.legacy.pytest_plugin``: the stand-in tests import ``neuronxcc.nki`` at
module level, which only works if the alias is installed before collection.
"""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "run_peer_suites.py")

_SDK_TEST = textwrap.dedent('''
    import numpy as np
    import pytest
    import neuronxcc.nki as nki
    import neuronxcc.nki.language as nl

    @nki.jit
    def test_named_like_a_test(a):          # a kernel, not a pytest test: not collected
        return a

    @nki.jit
    def twice(a):
        out = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
        nl.store(out, nl.load(a) * 2.0)
        return out

    def test_twice():
        assert np.array_equal(twice(np.ones((2, 2), np.float32)), np.full((2, 2), 2, np.float32))

    def test_wrong():
        assert twice(np.ones((2, 2), np.float32))[0, 0] == 3.0, "deliberately wrong"

    @pytest.mark.xfail(reason="known")
    def test_known():
        assert False
''')

_SAMPLES_CONFTEST = textwrap.dedent('''
    def pytest_addoption(parser):
        parser.addoption("--simulation-only", action="store_true", default=False)

    def pytest_configure(config):
        config.addinivalue_line("markers", "simulation: runs without a device")

    def pytest_collection_modifyitems(session, config, items):
        if config.getoption("--simulation-only"):
            items[:] = [i for i in items if i.get_closest_marker("simulation")]
''')

_SAMPLES_TEST = textwrap.dedent('''
    import numpy as np
    import pytest
    from neuronxcc.nki import benchmark
    from mykernels import scale

    def get_target_string():
        raise AssertionError("replaced by the runner with the emulated target")

    @pytest.mark.parametrize("n,latency", [(128, 1000.0), (64, 0.001)])
    def test_scale_perf(n, latency):
        assert get_target_string() == "trn2"
        b = benchmark(warmup=1, iters=2)(scale)
        bb = b[1]
        assert bb.kernel.grid == (1,)
        bb(np.ones((n, 512), np.float32))
        assert bb.benchmark_result.nc_latency.get_latency_percentile(50) <= latency

    @pytest.mark.simulation
    def test_scale_numeric():
        x = np.ones((128, 8), np.float32)
        assert np.array_equal(scale(x), 3 * x)
''')

_KERNELS = textwrap.dedent('''
    import neuronxcc.nki as nki
    import neuronxcc.nki.language as nl

    @nki.jit
    def scale(a):
        out = nl.ndarray(a.shape, dtype=a.dtype, buffer=nl.shared_hbm)
        nl.store(out, nl.load(a) * 3.0)
        return out
''')


def _tree(tmp_path):
    sdk = tmp_path / "sdk"
    (sdk / "nki" / "test").mkdir(parents=True)
    (sdk / "nki" / "test" / "test_nki_example.py").write_text(_SDK_TEST)
    sam = tmp_path / "samples"
    (sam / "test" / "unit").mkdir(parents=True)
    (sam / "src").mkdir()
    (sam / "src" / "mykernels.py").write_text(_KERNELS)
    (sam / "test" / "unit" / "conftest.py").write_text(_SAMPLES_CONFTEST)
    (sam / "test" / "unit" / "test_scale.py").write_text(_SAMPLES_TEST)
    return sdk, sam


def test_runner_counts_outcomes_and_lists_latencies_against_budgets(tmp_path):
    sdk, sam = _tree(tmp_path)
    r = subprocess.run([sys.executable, SCRIPT, "--sdk", str(sdk), "--samples", str(sam),
                        "-j", "1"], capture_output=True, text=True, timeout=600)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr                  # one deliberate failure
    assert "aws-neuron-sdk nki/test: 2/3 as expected (failed 1, passed 1, xfailed 1)" in out
    assert "FAIL test_nki_example.py::test_wrong" in out and "deliberately wrong" in out
    assert "nki-samples test/unit --simulation-only: 1/1" in out
    assert "nki-samples perf tests (-k perf): 1/2" in out
    assert "modelled" in out and "budget latency=0.001" in out


def test_runner_needs_a_checkout_path():
    r = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True)
    assert r.returncode == 2 and "give --sdk and/or --samples" in r.stderr
