"""Every Python snippet in the README runs as written (in order, as one session), and the two
set-up commands use separate virtual environments, the second being what CI runs verbatim."""
import contextlib
import io
import os
import re
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_python_snippets_run_verbatim(tmp_path):
    snippets = blocks("python")
    assert len(snippets) >= 5
    ns = {"__name__": "__readme__"}
    out = io.StringIO()
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out):
            for i, code in enumerate(snippets):
                exec(compile(code, f"README.md python block {i + 1}", "exec"), ns)
    finally:
        os.chdir(old)
    text = out.getvalue()
    assert "program tensor_add(" in text and "(MODELLED" in text
    assert "check tensor_add: PASS" in text and "float16  on trn2: worst" in text
    assert (tmp_path / "add.trace.json").stat().st_size > 0
    assert (tmp_path / "add.png").read_bytes()[:4] == b"\x89PNG"


def test_setup_commands_use_distinct_venvs_and_ci_runs_the_second():
    demo, test = blocks("sh")
    venvs = [re.match(r"python3 -m venv (\S+) && \. \1/bin/activate && ", c).group(1)
             for c in (demo, test)]
    assert venvs[0] != venvs[1]
    assert demo.strip().endswith("pip install -e . && neuron demo")
    assert test.strip().endswith('pip install -e ".[test]" && python -m pytest -n 2 tests')
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test.strip() in ci
