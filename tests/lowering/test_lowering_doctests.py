"""The examples in lowering's docstrings are part of the documentation: keep them true."""
import doctest
import importlib

import pytest

MODULES = ["lowering", "lowering.types", "lowering.ops", "lowering.graph", "lowering.hlo_syntax",
           "lowering.hlo_text"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
