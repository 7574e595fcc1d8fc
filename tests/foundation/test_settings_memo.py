"""settings() reuses its parse while the environment names it reads are unchanged."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from device import settings as S


def test_every_name_settings_reads_is_in_its_memo_key():
    src = Path(S.__file__).read_text()
    body = src[src.index("def _parse()"):]
    read = set(re.findall(r'"((?:NEURON|NKI|XDG)_[A-Z0-9_]+)"', body))
    assert read and read <= set(S.ENV_NAMES), read - set(S.ENV_NAMES)
    assert "os.path.expanduser" in body and "HOME" in S.ENV_NAMES


def test_a_changed_variable_is_read_on_the_next_call(monkeypatch):
    monkeypatch.delenv("NEURON_EMU_EXECUTOR", raising=False)
    first = S.settings()
    assert first.executor == "fast" and S.settings() is first          # parsed once
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", "reference")
    assert S.settings().executor == "reference"
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", "nonsense")
    with pytest.raises(ValueError, match="NEURON_EMU_EXECUTOR='nonsense' is not an executor"):
        S.settings()
    with pytest.raises(ValueError, match="is not an executor"):      # refused every time
        S.settings()
    monkeypatch.setenv("NEURON_EMU_EXECUTOR", "exact")
    assert S.settings().executor == "exact"
