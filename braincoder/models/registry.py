"""Name → class registry of encoding and decoding models.

Every model class is registered under a short snake-case name with :func:`register_model`,
so that scripts, the command line and saved model specifications refer to models by name.
"""

from __future__ import annotations

_REGISTRY: dict[str, type] = {}


def register_model(name):
    """Register a model class under ``name`` (class decorator).

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"gaussian_prf_2d"``. Must be unique.

    Returns
    -------
    callable
        A decorator that registers the class, sets its ``registry_name`` attribute and
        returns the class unchanged.

    Raises
    ------
    ValueError
        If ``name`` is already registered to a different class.

    Examples
    --------
    >>> from braincoder.models import register_model, EncodingModel
    >>> @register_model("my_model")
    ... class MyModel(EncodingModel):
    ...     parameter_labels = ["baseline"]
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"model name must be a non-empty string, got {name!r}")

    def decorator(cls):
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"model name {name!r} is already registered to {existing.__qualname__}"
            )
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return decorator


def get_model(name, **kwargs):
    """Build a registered model by name.

    Parameters
    ----------
    name : str
        Registry name (see :func:`list_models`).
    **kwargs
        Keyword arguments passed to the model's constructor; an unknown keyword raises
        ``TypeError``.

    Returns
    -------
    object
        A new instance of the registered class.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the known names.

    Examples
    --------
    >>> from braincoder.models import get_model
    >>> model = get_model("gaussian_prf")
    >>> model.get_parameter_labels()
    ['mu', 'sd', 'amplitude', 'baseline']
    """
    return get_model_class(name)(**kwargs)


def get_model_class(name):
    """Return the class registered under ``name``.

    Parameters
    ----------
    name : str
        Registry name.

    Returns
    -------
    type
        The registered class.

    Raises
    ------
    ValueError
        If ``name`` is not registered; the message lists the known names.
    """
    _load_optional_models()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown model {name!r}; known models: {known}") from None


def list_models():
    """List the registered model names.

    Returns
    -------
    list of str
        Sorted registry names.

    Examples
    --------
    >>> from braincoder.models import list_models
    >>> "gaussian_prf_2d_hrf" in list_models()
    True
    """
    _load_optional_models()
    return sorted(_REGISTRY)


def _load_optional_models():
    """Import the deep models so that they register themselves (they import Keras layers)."""
    import importlib

    try:
        importlib.import_module("braincoder.models.deep")
    except ImportError as error:  # a missing optional module must not hide classic models
        if "braincoder.models.deep" not in str(error):
            raise
