"""Stimulus spaces: paradigm validation, pixel grids and default decoding grids."""

import numpy as np
import pandas as pd
import pytest

from braincoder.stimuli import (
    CircularStimulus,
    ImageStimulus,
    OneDimensionalRadialStimulus,
    OneDimensionalStimulus,
    PositiveStimulus,
    Stimulus,
    make_grid_coordinates,
)


def test_grid_coordinates_orientation_and_row_major_order():
    grid = make_grid_coordinates((2, 3), extent=1.0)
    assert grid.index.equals(pd.RangeIndex(6, name="pixel"))
    assert grid["x"].tolist() == [-1.0, 0.0, 1.0, -1.0, 0.0, 1.0]
    assert grid["y"].tolist() == [1.0, 1.0, 1.0, -1.0, -1.0, -1.0]
    square = make_grid_coordinates(4, extent=3.0)
    assert square.shape == (16, 2)
    image_x = square["x"].to_numpy().reshape(4, 4)
    image_y = square["y"].to_numpy().reshape(4, 4)
    np.testing.assert_allclose(image_x[0], [-3, -1, 1, 3])  # along a row: left to right
    np.testing.assert_allclose(image_y[:, 0], [3, 1, -1, -3])  # down a column: top to bottom


def test_default_grids():
    assert OneDimensionalStimulus(0, 4).default_grid(5)["x"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(PositiveStimulus(1, 16).default_grid(5)["x"], [1, 2, 4, 8, 16])
    circular = CircularStimulus().default_grid(4)
    np.testing.assert_allclose(circular["x (radians)"], [-np.pi, -np.pi / 2, 0, np.pi / 2])
    assert OneDimensionalRadialStimulus is CircularStimulus
    grid = make_grid_coordinates(3)
    image = ImageStimulus(grid).default_grid()
    np.testing.assert_array_equal(image.to_numpy(), np.eye(9))
    assert image.index.equals(grid.index)
    with pytest.raises(NotImplementedError):
        Stimulus(2).default_grid()


def test_clean_paradigm_labels():
    space = OneDimensionalStimulus()
    frame = space.clean_paradigm([1.0, 2.0])
    assert frame.columns.tolist() == ["x"] and frame.index.name == "time"
    given = pd.DataFrame({"numerosity": [1.0]}, index=pd.Index([3], name="frame"))
    assert space.clean_paradigm(given) is given  # the caller's frame, not a copy
    series = pd.Series([1.0, 2.0], index=pd.Index([7, 8], name="frame"), name="contrast")
    frame = space.clean_paradigm(series)
    assert frame.columns.tolist() == ["contrast"] and frame.index.equals(series.index)
    assert Stimulus(None).clean_paradigm(np.ones((2, 5))).shape == (2, 5)


@pytest.mark.parametrize("space, paradigm, match", [
    (OneDimensionalStimulus(), np.ones((3, 2)), "paradigm has 2 columns .* 1 dimension"),
    (OneDimensionalStimulus(), np.ones((0, 1)), "paradigm has no time points"),
    (OneDimensionalStimulus(), np.ones((2, 2, 2)), "1D or 2D"),
    (OneDimensionalStimulus(), pd.DataFrame({"x": [1.0, np.inf]}, index=pd.Index([4, 8],
                                                                                  name="time")),
     r"paradigm: column 'x' has 1 non-finite value \(first at time 8\)"),
    (PositiveStimulus(), pd.DataFrame({"x": [1.0, -1.0, -2.0]}, index=pd.Index([5, 17, 18],
                                                                                name="time")),
     r"paradigm must be >= 0 .*2 time points are not \(first at time 17\)"),
    (ImageStimulus(make_grid_coordinates(3)), np.ones((4, 8)),
     "paradigm has 8 pixels per image but grid_coordinates has 9 pixels"),
    (ImageStimulus(make_grid_coordinates(3)), np.ones((4, 2, 2)),
     "paradigm has 4 pixels per image but grid_coordinates has 9 pixels"),
    (ImageStimulus(make_grid_coordinates(3)), pd.DataFrame(np.ones((4, 10))),
     "10 pixel columns but grid_coordinates has 9"),
])
def test_bad_paradigms(space, paradigm, match):
    with pytest.raises(ValueError, match=match):
        space.clean_paradigm(paradigm)


def test_circular_stimulus_accepts_any_angle():
    frame = CircularStimulus().clean_paradigm([-10.0, 0.0, 10.0])
    assert frame["x (radians)"].tolist() == [-10.0, 0.0, 10.0]


def test_positive_stimulus_accepts_zero():
    assert PositiveStimulus().clean_paradigm([0.0, 2.0])["x"].tolist() == [0.0, 2.0]


def test_image_paradigm_is_flattened_row_major():
    space = ImageStimulus(make_grid_coordinates((2, 3)))
    images = np.arange(12.0).reshape(2, 2, 3)
    frame = space.clean_paradigm(images)
    assert frame.shape == (2, 6) and frame.columns.equals(space.grid_coordinates.index)
    np.testing.assert_array_equal(frame.to_numpy(), images.reshape(2, 6))


def test_image_stimulus_grid_coordinates():
    frame = pd.DataFrame({"y": [1.0, 2.0], "x": [3.0, 4.0], "extra": 0.0},
                         index=pd.Index(["p0", "p1"], name="pixel"))
    space = ImageStimulus(frame)
    assert space.grid_coordinates.columns.tolist() == ["x", "y"]
    assert space.grid_coordinates["x"].tolist() == [3.0, 4.0]
    assert space.n_dimensions == 2
    assert space.get_config() == {"class": "ImageStimulus",
                                  "grid_coordinates": {"x": [3.0, 4.0], "y": [1.0, 2.0]}}
    array_space = ImageStimulus(np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert array_space.grid_coordinates["y"].tolist() == [1.0, 3.0]


@pytest.mark.parametrize("coordinates, match", [
    (None, "need grid_coordinates"),
    (pd.DataFrame({"a": [0.0], "b": [1.0]}), "columns 'x' and 'y'; missing \\['x', 'y'\\]"),
    (np.ones((4, 3)), "must have 2 columns"),
    (pd.DataFrame({"x": [0.0, np.nan], "y": [1.0, 1.0]}), "grid_coordinates: column 'x'"),
])
def test_bad_grid_coordinates(coordinates, match):
    with pytest.raises(ValueError, match=match):
        ImageStimulus(coordinates)
