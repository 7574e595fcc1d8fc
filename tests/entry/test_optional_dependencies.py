"""The base install (numpy, ml_dtypes) runs kernels, profiles them and imports HLO text; JAX
(extra ``[jax]``), matplotlib (``[plot]``) and hypothesis (``neuron.testing``) are imported only
when used, with a clear error naming the extra when missing."""
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import sys
    for m in ("jax", "jaxlib", "matplotlib", "hypothesis", "scipy"):
        sys.modules[m] = None                     # as if not installed
    import numpy as np
    import neuron, nki, nki.language as nl
    from neuron.demo import tensor_add_kernel

    a = np.ones((128, 512), np.float32)
    assert (tensor_add_kernel(a, a) == 2).all()
    assert tensor_add_kernel.profile(a, a).total_ns > 0
    hlo = """HloModule m
    ENTRY e {
      p = f32[4,8] parameter(0)
      ROOT r = f32[4,8] exponential(p)
    }"""
    f = neuron.load_hlo(hlo)
    np.testing.assert_allclose(f(np.zeros((4, 8), np.float32)), 1.0)
    for call in (lambda: neuron.from_jax(lambda x: x)(a),
                 lambda: neuron.load_stablehlo("module {}"),
                 lambda: tensor_add_kernel.profile(a, a).save_png("x.png")):
        try:
            call()
        except Exception as e:
            print(type(e).__name__ + ": " + str(e).splitlines()[0])
    loaded = sorted(m for m in ("jax", "matplotlib", "hypothesis") if sys.modules.get(m))
    print("loaded:", loaded)
    try:
        import neuron.testing
    except ImportError as e:
        print("ImportError: " + str(e))
''')


def test_base_install_works_without_the_extras(tmp_path):
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "ImportError: neuron.from_jax needs jax and jaxlib: pip install 'neuron-emu[jax]'"
    assert lines[1].startswith("StableHloImportError: the StableHLO importer needs jax and jaxlib: "
                               "pip install 'neuron-emu[jax]'")
    assert lines[2].startswith("ImportError: Report.save_png needs matplotlib: pip install "
                               "matplotlib (or pip install 'neuron-emu[plot]'")
    assert lines[3] == "loaded: []"
    assert lines[4] == ("ImportError: neuron.testing needs hypothesis: pip install 'neuron-emu[test]' "
                        "(or pip install hypothesis)")


def test_pyproject_extras():
    import tomllib
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {d.split(">")[0].split("=")[0].split("<")[0] for d in meta["dependencies"]}
    assert {"numpy", "ml_dtypes"} <= base       # plus small pure-Python helpers (platformdirs, tqdm)
    assert not base & {"jax", "jaxlib", "matplotlib", "hypothesis", "dask", "scipy", "pytest"}
    extras = meta["optional-dependencies"]
    names = {k: {d.split(">")[0].split("<")[0] for d in v} for k, v in extras.items()}
    assert names["jax"] == {"jax", "jaxlib"} and names["plot"] == {"matplotlib"}
    assert names["test"] >= names["jax"] | names["plot"] | names["dask"] | {"pytest", "hypothesis",
                                                                           "pytest-xdist"}
