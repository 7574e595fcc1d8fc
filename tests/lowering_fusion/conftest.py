"""Fixtures for tests/lowering_fusion (the hypothesis profile is in tests/conftest.py)."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)
