"""Every tutorial is executed by the test suite: import it by path and run its ``main()``, which
checks its kernels against NumPy and prints what it found."""
import importlib.util
from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[2] / "tutorials").glob("[0-9][0-9]_*.py"))


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"tutorial_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_at_least_four_tutorials():
    names = [p.stem for p in TUTORIALS]
    assert len(names) >= 4, names
    for prefix in ("01_tensor_add", "02_tiled_matmul", "03_fused_", "04_scan"):
        assert any(n.startswith(prefix) for n in names), (prefix, names)


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_and_matches_numpy(path, capsys):
    module = load(path)
    assert module.__doc__ and "What you learn" in module.__doc__
    module.main()
    printed = capsys.readouterr().out
    assert "matches NumPy" in printed, printed
