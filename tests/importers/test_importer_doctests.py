"""The docstring examples of the new lowering modules are documentation: keep them true."""
import doctest
import importlib

import pytest

MODULES = ["lowering.ops_elementwise", "lowering.ops_layout", "lowering.ops_window",
           "lowering.importer_common", "lowering.graph", "lowering.ops"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
