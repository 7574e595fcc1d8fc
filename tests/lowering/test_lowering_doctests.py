"""The examples in lowering's docstrings are part of the documentation: every module's run."""
import doctest
import importlib
import pkgutil

import pytest

import lowering

MODULES = sorted(["lowering"] + [m.name for m in pkgutil.walk_packages(lowering.__path__,
                                                                        "lowering.")])


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_public_modules_have_examples():
    tried = sum(doctest.testmod(importlib.import_module(n), optionflags=doctest.ELLIPSIS,
                                report=False).attempted for n in MODULES)
    assert tried >= 40
