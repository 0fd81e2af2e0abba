"""Every public object has a numpydoc docstring and an entry in the API pages.

Public objects are the names in ``__all__`` of the package's public modules. Functions,
classes and the public methods of those classes need a summary and, if they take
arguments, a Parameters section (a class's arguments are those of its ``__init__``;
dataclasses, which are result containers, may document their fields under Attributes).
Every public function and class must appear in an ``autoclass``/``autofunction`` entry of
``docs/api/*.rst``.
"""

import dataclasses
import importlib
import inspect
import re
import warnings
from pathlib import Path

import pytest
from numpydoc.docscrape import NumpyDocString

MODULES = [
    "braincoder.models",
    "braincoder.hrf",
    "braincoder.optimize",
    "braincoder.stimuli",
    "braincoder.utils",
    "braincoder.models.deep",
    "braincoder.layers",
    "braincoder.datasets",
]
OPTIONAL = {"braincoder.layers", "braincoder.models.deep"}
API_PAGES = Path(__file__).resolve().parents[1] / "docs" / "api"


def _modules():
    found = []
    for name in MODULES:
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            if name not in OPTIONAL:
                raise
    return found


def _public_objects():
    seen = {}
    for module in _modules():
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj):
                seen.setdefault(id(obj), (f"{module.__name__}.{name}", obj))
    return sorted(seen.values(), key=lambda item: item[0])


def _arguments(obj):
    """Names of the arguments a caller passes (no self/cls)."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    if inspect.isclass(obj) and target is object.__init__:
        return []
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    return [name for name in signature.parameters if name not in ("self", "cls")]


def _problems(obj):
    """Return a list of what is wrong with the object's docstring (empty when fine)."""
    text = obj.__doc__  # the object's own docstring, not an inherited one
    if not text or not text.strip():
        return ["no docstring"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpydoc warns on unknown or malformed sections
        try:
            parsed = NumpyDocString(inspect.cleandoc(text))
        except Exception as error:  # noqa: BLE001 - any parse failure is an offence
            return [f"not numpydoc ({type(error).__name__}: {error})"]
    problems = []
    if not parsed["Summary"] or not "".join(parsed["Summary"]).strip():
        problems.append("no summary line")
    if _arguments(obj):
        sections = ["Parameters"]
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
            sections.append("Attributes")
        if not any(parsed[section] for section in sections):
            problems.append(f"no {' or '.join(sections)} section for arguments "
                            f"{_arguments(obj)}")
    return problems


def _public_methods():
    """Public methods and properties defined by the public classes themselves."""
    for name, cls in _public_objects():
        if not inspect.isclass(cls):
            continue
        for attribute, member in vars(cls).items():
            if attribute.startswith("_"):
                continue
            function = member.fget if isinstance(member, property) else getattr(
                member, "__func__", member)
            if inspect.isfunction(function):
                yield f"{name}.{attribute}", function


def _offenders(objects):
    return [f"{name}: {'; '.join(problems)}"
            for name, obj in objects if (problems := _problems(obj))]


def test_public_objects_are_found():
    names = {name for name, _ in _public_objects()}
    assert {"braincoder.models.GaussianPRF2DWithHRF", "braincoder.hrf.SPMHRFModel",
            "braincoder.optimize.WeightFitter", "braincoder.utils.get_rsq",
            "braincoder.stimuli.make_grid_coordinates"} <= names
    assert len(names) > 40


def test_every_public_object_has_a_numpydoc_docstring():
    offenders = _offenders(_public_objects())
    assert not offenders, (f"{len(offenders)} public objects lack a numpydoc docstring:\n"
                           + "\n".join(offenders))


def test_every_public_method_has_a_numpydoc_docstring():
    methods = list(_public_methods())
    assert "braincoder.models.EncodingModel.predict" in dict(methods)
    offenders = _offenders(methods)
    assert not offenders, (f"{len(offenders)} public methods lack a numpydoc docstring:\n"
                           + "\n".join(offenders))


def _api_entries():
    """Fully qualified names of the autoclass/autofunction entries of the API pages."""
    entries = set()
    for page in sorted(API_PAGES.glob("*.rst")):
        module = None
        for line in page.read_text().splitlines():
            if match := re.match(r"\.\. (?:currentmodule|automodule):: (\S+)", line):
                module = match.group(1)
            elif match := re.match(r"\.\. auto(?:class|function):: (\S+)", line):
                name = match.group(1)
                entries.add(name if "." in name or module is None else f"{module}.{name}")
    return entries


def _missing_from_api(entries):
    missing = []
    for name, obj in _public_objects():
        candidates = {name, f"{obj.__module__}.{obj.__qualname__}"}
        if not candidates & entries:
            missing.append(name)
    return missing


def test_every_public_object_is_in_the_api_pages():
    entries = _api_entries()
    assert "braincoder.models.GaussianPRF" in entries
    assert "braincoder.models.serialization.save_model" in entries
    assert len(_missing_from_api(set())) == len(_public_objects())
    missing = _missing_from_api(entries)
    assert not missing, ("public objects without an autoclass/autofunction entry in "
                         f"docs/api/*.rst: {missing}")


def _undocumented():
    """A bare function, and a class whose docstring lacks Parameters."""

    class Bare:
        """Summary only.

        Notes
        -----
        Nothing about ``size``.
        """

        def __init__(self, size):
            self.size = size

    def bare(x):
        return x

    return Bare, bare


def test_checker_catches_missing_parts():
    bare_class, bare_function = _undocumented()
    assert _problems(bare_function) == ["no docstring"]
    assert _problems(bare_class) == ["no Parameters section for arguments ['size']"]

    def bad_section(x):
        """Summary.

        Parametres
        ----------
        x : int
            Misspelt section.
        """

    assert _problems(bad_section)[0].startswith("not numpydoc")

    @dataclasses.dataclass
    class Result:
        """A result.

        Attributes
        ----------
        value : float
            The value.
        """

        value: float = 0.0

    assert _problems(Result) == []


@pytest.mark.parametrize("module", ["braincoder.hrf", "braincoder.stimuli"])
def test_modules_declare_all(module):
    assert importlib.import_module(module).__all__
