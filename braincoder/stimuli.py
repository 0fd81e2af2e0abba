"""Stimulus spaces: what a paradigm's columns mean, how to validate it, what to decode over.

Each encoding model declares its stimulus space. A space validates and normalises a
paradigm (time × stimulus dimension DataFrame) and provides a default grid of stimulus
values for decoding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .utils.formatting import STIMULUS_DIMENSION, TIME, to_frame
from .utils.validation import check_finite, format_labels

__all__ = [
    "Stimulus",
    "OneDimensionalStimulus",
    "CircularStimulus",
    "OneDimensionalRadialStimulus",
    "PositiveStimulus",
    "StimulusWithAmplitude",
    "ImageStimulus",
    "make_grid_coordinates",
]


class Stimulus:
    """Base stimulus space with ``n_dimensions`` columns.

    Parameters
    ----------
    n_dimensions : int or None
        Number of paradigm columns (None: any number, e.g. linear models).
    dimension_labels : sequence, optional
        Column labels used for array input.
    """

    def __init__(self, n_dimensions, dimension_labels=None):
        self.n_dimensions = None if n_dimensions is None else int(n_dimensions)
        if dimension_labels is None and self.n_dimensions is not None:
            dimension_labels = pd.RangeIndex(self.n_dimensions, name=STIMULUS_DIMENSION)
        self.dimension_labels = None if dimension_labels is None else pd.Index(dimension_labels)

    def clean_paradigm(self, paradigm):
        """Validate a paradigm and return it as a DataFrame.

        Parameters
        ----------
        paradigm : array-like or DataFrame, shape (n_timepoints, n_dimensions)
            Stimulus per time point.

        Returns
        -------
        DataFrame
            The paradigm; a DataFrame keeps its labels.

        Raises
        ------
        ValueError
            If the number of columns is wrong or values are NaN/inf or out of range.
        """
        frame = to_frame(
            paradigm, "paradigm", index_name=TIME, columns=self._array_columns(paradigm)
        )
        if self.n_dimensions is not None and frame.shape[1] != self.n_dimensions:
            raise ValueError(
                f"paradigm has {frame.shape[1]} columns but this stimulus space has "
                f"{self.n_dimensions} dimension{'s' if self.n_dimensions > 1 else ''}"
            )
        if len(frame) == 0:
            raise ValueError("paradigm has no time points")
        check_finite(frame, "paradigm")
        self._check_range(frame)
        return frame

    def _array_columns(self, paradigm):
        if isinstance(paradigm, pd.DataFrame | pd.Series):
            return None
        if self.n_dimensions is None:
            return None
        shape = np.shape(paradigm)
        n_columns = shape[1] if len(shape) == 2 else 1
        return self.dimension_labels if n_columns == self.n_dimensions else None

    def _check_range(self, frame):
        """Raise for values outside the space (none here; subclasses restrict it)."""

    def default_grid(self, n=100):
        """Return a default grid of stimulus values for decoding.

        Parameters
        ----------
        n : int, default 100
            Number of grid points.

        Returns
        -------
        DataFrame
            Grid points × dimensions.
        """
        raise NotImplementedError

    def overlap_grid(self):
        """Return the stimuli over which receptive fields are compared (their overlap).

        Returns
        -------
        DataFrame
            Grid points × dimensions; the default decoding grid unless a space overrides
            it.
        """
        return self.default_grid()

    def get_config(self):
        """Return the space's arguments as a JSON-serialisable dict.

        Returns
        -------
        dict
            Constructor arguments.
        """
        return {"class": type(self).__name__, "n_dimensions": self.n_dimensions}


class OneDimensionalStimulus(Stimulus):
    """A scalar stimulus per time point (e.g. numerosity, contrast), one paradigm column.

    Parameters
    ----------
    low, high : float, optional
        Range of the default decoding grid (by default 0 … 10).
    """

    def __init__(self, low=0.0, high=10.0):
        super().__init__(1, dimension_labels=pd.Index(["x"], name=STIMULUS_DIMENSION))
        self.low = float(low)
        self.high = float(high)

    def default_grid(self, n=100):
        """Return ``n`` evenly spaced values from ``low`` to ``high``.

        Parameters
        ----------
        n : int, default 100
            Number of grid points.

        Returns
        -------
        DataFrame, shape (n, 1)
            The grid.
        """
        return pd.DataFrame(
            {"x": np.linspace(self.low, self.high, n)},
            index=pd.RangeIndex(n, name="stimulus"),
        )


class PositiveStimulus(OneDimensionalStimulus):
    """A non-negative scalar stimulus (log-Gaussian tuning, e.g. numerosity).

    Zero is allowed (a log-Gaussian responds with its baseline); negative values raise.

    Parameters
    ----------
    low, high : float, optional
        Range of the default (log-spaced) decoding grid, by default 1 … 64.
    """

    def __init__(self, low=1.0, high=64.0):
        super().__init__(low, high)

    def _check_range(self, frame):
        values = frame.to_numpy()
        bad = np.flatnonzero(~(values[:, 0] >= 0))
        if bad.size:
            raise ValueError(
                f"paradigm must be >= 0 for log-Gaussian tuning; {bad.size} time points are not "
                f"(first at {frame.index.name or 'row'} {format_labels(frame.index[bad[:1]])})"
            )

    def default_grid(self, n=100):
        """Return ``n`` log-spaced values from ``low`` to ``high``.

        Parameters
        ----------
        n : int, default 100
            Number of grid points.

        Returns
        -------
        DataFrame, shape (n, 1)
            The grid.
        """
        return pd.DataFrame(
            {"x": np.geomspace(self.low, self.high, n)},
            index=pd.RangeIndex(n, name="stimulus"),
        )


class CircularStimulus(OneDimensionalStimulus):
    """A circular scalar stimulus in radians (e.g. orientation, motion direction).

    Values may be any real number; they are interpreted modulo 2π. The dimension is
    labelled ``x (radians)``, as in the public braincoder.
    """

    def __init__(self):
        super().__init__(-np.pi, np.pi)
        self.dimension_labels = pd.Index(["x (radians)"], name=STIMULUS_DIMENSION)

    def default_grid(self, n=100):
        """Return ``n`` evenly spaced angles over one period, ``[−π, π)``.

        Parameters
        ----------
        n : int, default 100
            Number of grid points.

        Returns
        -------
        DataFrame, shape (n, 1)
            The grid.
        """
        return pd.DataFrame(
            {self.dimension_labels[0]: np.linspace(-np.pi, np.pi, n, endpoint=False)},
            index=pd.RangeIndex(n, name="stimulus"),
        )


OneDimensionalRadialStimulus = CircularStimulus


class StimulusWithAmplitude(Stimulus):
    """A one-dimensional stimulus plus its strength (drive): two paradigm columns.

    The first column is the base space's value (e.g. orientation), the second,
    ``amplitude``, scales the stimulus-driven response (e.g. contrast, or attention's
    gain). Models built with ``model_stimulus_amplitude=True`` use this space.

    Parameters
    ----------
    base : OneDimensionalStimulus
        The space of the first column (its range checks apply to it).

    Notes
    -----
    There is no default decoding grid: the range of plausible amplitudes depends on the
    experiment, so decoding needs an explicit grid over both columns (for example the
    Cartesian product built by :meth:`~braincoder.optimize.StimulusFitter.fit_grid`).
    Receptive fields are compared (:meth:`overlap_grid`) over the base space's grid at
    amplitude 1.
    """

    def __init__(self, base):
        if not isinstance(base, OneDimensionalStimulus):
            raise TypeError(
                f"base must be a one-dimensional stimulus space, got {type(base).__name__}"
            )
        labels = [*base.dimension_labels, "amplitude"]
        super().__init__(2, dimension_labels=pd.Index(labels, name=STIMULUS_DIMENSION))
        self.base = base

    def _check_range(self, frame):
        self.base._check_range(frame.iloc[:, :1])

    def default_grid(self, n=100):
        """Not available: a grid over amplitudes must come from the experiment.

        Parameters
        ----------
        n : int, default 100
            Unused.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(
            "a stimulus with amplitude has no default grid; give one over both columns"
        )

    def overlap_grid(self):
        """Return the base space's default grid at amplitude 1.

        Returns
        -------
        DataFrame
            Grid points × (base dimension, ``amplitude``).
        """
        grid = self.base.default_grid()
        grid.columns = self.dimension_labels[:1]
        return grid.assign(amplitude=1.0)

    def get_config(self):
        """Return the space's arguments as a JSON-serialisable dict.

        Returns
        -------
        dict
            The class name and the base space's configuration.
        """
        return {"class": type(self).__name__, "base": self.base.get_config()}


class ImageStimulus(Stimulus):
    """Images on a pixel grid: one paradigm column per pixel, in ``grid_coordinates`` order.

    Parameters
    ----------
    grid_coordinates : DataFrame or array-like, shape (n_pixels, 2)
        Visual-field coordinates of each pixel, columns ``x`` and ``y``.

    Notes
    -----
    A paradigm may be given as time × pixels, or as an array time × height × width,
    flattened in row-major (C) order: pixel ``row · width + column``, the order produced by
    :func:`make_grid_coordinates`.
    """

    def __init__(self, grid_coordinates):
        if grid_coordinates is None:
            raise ValueError(
                "2D models need grid_coordinates (pixels × ['x', 'y']); see "
                "braincoder.stimuli.make_grid_coordinates"
            )
        coordinates = to_frame(
            grid_coordinates, "grid_coordinates", index_name="pixel", columns=None
        )
        if not isinstance(grid_coordinates, pd.DataFrame):
            if coordinates.shape[1] != 2:
                raise ValueError(
                    f"grid_coordinates must have 2 columns (x, y), got shape {coordinates.shape}"
                )
            coordinates.columns = pd.Index(["x", "y"])
        missing = [c for c in ("x", "y") if c not in coordinates.columns]
        if missing:
            raise ValueError(
                f"grid_coordinates must have columns 'x' and 'y'; missing {missing}, found "
                f"{list(coordinates.columns)}"
            )
        coordinates = coordinates[["x", "y"]].astype(np.float64)
        check_finite(coordinates, "grid_coordinates")
        super().__init__(len(coordinates), dimension_labels=coordinates.index)
        self.grid_coordinates = coordinates

    def clean_paradigm(self, paradigm):
        """Validate images and return them as time × pixel DataFrame.

        Parameters
        ----------
        paradigm : array-like or DataFrame
            Shape (n_timepoints, n_pixels) or (n_timepoints, height, width).

        Returns
        -------
        DataFrame
            Time × pixel paradigm.

        Raises
        ------
        ValueError
            If the pixel count does not match ``grid_coordinates`` or values are not finite.
        """
        if not isinstance(paradigm, pd.DataFrame):
            array = np.asarray(paradigm, dtype=np.float64)
            if array.ndim == 3:
                array = array.reshape(array.shape[0], -1)
            if array.ndim == 2 and array.shape[1] != self.n_dimensions:
                raise ValueError(
                    f"paradigm has {array.shape[1]} pixels per image but grid_coordinates has "
                    f"{self.n_dimensions} pixels"
                )
            paradigm = array
        elif paradigm.shape[1] != self.n_dimensions:
            raise ValueError(
                f"paradigm has {paradigm.shape[1]} pixel columns but grid_coordinates has "
                f"{self.n_dimensions} pixels"
            )
        return super().clean_paradigm(paradigm)

    def default_grid(self, n=None):
        """Return single-pixel images at every pixel (a dot stimulus at each position).

        Parameters
        ----------
        n : None
            Unused; the grid has one image per pixel.

        Returns
        -------
        DataFrame, shape (n_pixels, n_pixels)
            Identity images indexed by pixel.
        """
        eye = np.eye(self.n_dimensions)
        return pd.DataFrame(eye, index=self.grid_coordinates.index, columns=self.dimension_labels)

    def get_config(self):
        """Return the grid coordinates as a JSON-serialisable dict.

        Returns
        -------
        dict
            ``{"class": "ImageStimulus", "grid_coordinates": {"x": [...], "y": [...]}}``.
        """
        return {
            "class": "ImageStimulus",
            "grid_coordinates": {
                "x": self.grid_coordinates["x"].tolist(),
                "y": self.grid_coordinates["y"].tolist(),
            },
        }


def make_grid_coordinates(size, extent=5.0):
    """Pixel coordinates of a square image covering ``[−extent, extent]`` degrees.

    Pixels are in row-major order; ``x`` grows along columns (left → right) and ``y`` shrinks
    along rows (top row = ``+extent``), the usual orientation of an image on screen.

    Parameters
    ----------
    size : int or (int, int)
        Image side in pixels, or (height, width).
    extent : float, default 5.0
        Half-width of the visual field covered, in degrees.

    Returns
    -------
    DataFrame, shape (height · width, 2)
        Columns ``x``, ``y``, indexed by pixel.

    Examples
    --------
    >>> from braincoder.stimuli import make_grid_coordinates
    >>> make_grid_coordinates(2, extent=1.0).to_numpy().tolist()
    [[-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]
    """
    height, width = (size, size) if np.isscalar(size) else size
    x = np.linspace(-extent, extent, width)
    y = np.linspace(extent, -extent, height)
    xx, yy = np.meshgrid(x, y)
    return pd.DataFrame(
        {"x": xx.ravel(), "y": yy.ravel()}, index=pd.RangeIndex(height * width, name="pixel")
    )
