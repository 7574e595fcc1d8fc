"""The examples in the docstrings of the modules this kit added run as written."""
import doctest
import importlib

import pytest

MODULES = ["nki.docs", "nki.doc_examples", "nki.strictness", "neuron.compare", "neuron.testing", "device.misuse",
           "device.lints", "device.timeline_plot", "lowering.lower.dot_sum"]


@pytest.mark.parametrize("name", MODULES)
def test_module_doctests(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0, result
