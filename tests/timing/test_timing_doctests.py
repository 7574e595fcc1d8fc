"""The docstring examples of the timing model's modules run (they are part of the docs)."""
import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["device.timing", "device.critical_path", "device.roofline"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
