"""Fixtures for tests/lowering. Hypothesis profiles ("ci" by default, derandomized, no deadline
so that JAX's first compile of a shape does not count) live in tests/conftest.py."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)
