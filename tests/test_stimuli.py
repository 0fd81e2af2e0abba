"""Stimulus spaces: validation and default decoding grids."""

import numpy as np
import pandas as pd
import pytest

from braincoder.stimuli import (
    CircularStimulus,
    ImageStimulus,
    OneDimensionalStimulus,
    PositiveStimulus,
    make_grid_coordinates,
)


def test_grid_coordinates_orientation():
    grid = make_grid_coordinates((2, 3), extent=1.0)
    assert grid["x"].tolist() == [-1.0, 0.0, 1.0, -1.0, 0.0, 1.0]
    assert grid["y"].tolist() == [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]


def test_default_grids():
    assert OneDimensionalStimulus(0, 4).default_grid(5)["x"].tolist() == [0, 1, 2, 3, 4]
    grid = PositiveStimulus(1, 16).default_grid(5)["x"].to_numpy()
    np.testing.assert_allclose(grid, [1, 2, 4, 8, 16])
    circular = CircularStimulus().default_grid(4)["x"].to_numpy()
    np.testing.assert_allclose(circular, [-np.pi, -np.pi / 2, 0, np.pi / 2])
    image = ImageStimulus(make_grid_coordinates(3)).default_grid()
    np.testing.assert_array_equal(image.to_numpy(), np.eye(9))


def test_clean_paradigm():
    space = OneDimensionalStimulus()
    frame = space.clean_paradigm([1.0, 2.0])
    assert frame.columns.tolist() == ["x"] and frame.index.name == "time"
    given = pd.DataFrame({"numerosity": [1.0]}, index=pd.Index([3], name="frame"))
    assert space.clean_paradigm(given) is given
    with pytest.raises(ValueError, match="2 columns"):
        space.clean_paradigm(np.ones((3, 2)))
    with pytest.raises(ValueError, match="> 0.*time 1"):
        PositiveStimulus().clean_paradigm([1.0, -1.0])
    with pytest.raises(ValueError, match="columns 'x' and 'y'"):
        ImageStimulus(pd.DataFrame({"a": [0.0], "b": [1.0]}))
