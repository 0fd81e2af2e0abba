"""Shared fixtures of the test suite (keep this file small)."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded numpy generator, fresh for every test."""
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def grid():
    """A small 5 × 5 pixel grid covering [-2, 2] degrees (row-major, top row first)."""
    from braincoder.stimuli import make_grid_coordinates

    return make_grid_coordinates(5, extent=2.0)
