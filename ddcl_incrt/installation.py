"""Where this installation's parts are: its documentation (shipped in the wheel as data files under
``<prefix>/share/ddcl-incrt/docs``, or the checkout's ``docs/``) and its four generic top-level
packages, which must come from the same installation as :mod:`ddcl_incrt`.

Why the packages keep their generic names (``reference``, ``training``, ``accelerated``,
``proofs_check``): the design makes ``reference/`` *the* specification, importable as itself by port
authors and researchers (``reference.invariants``, ``reference.claims``), and every documented import
path uses these names. Python has one flat namespace of top-level modules, so another module of the
same name earlier on ``sys.path`` silently wins; :func:`foreign_package` says so, for an error
naming both places (docs/strategies.md, "Installing next to other packages").
"""

from __future__ import annotations

import importlib.util
import sysconfig
from pathlib import Path

OWN_PACKAGES = ("reference", "training", "accelerated", "proofs_check")
DOCS_DATA_DIR = Path("share") / "ddcl-incrt" / "docs"  # pyproject.toml, [tool.setuptools.data-files]
_HERE = Path(__file__).resolve().parent  # .../ddcl_incrt


class ForeignPackageError(ImportError):
    """One of the generic top-level names resolves to a module that is not this installation's."""


def foreign_package(name: str) -> str | None:
    """Why ``import name`` would not load this installation's package ``name`` (a ``reference.py`` in
    the current directory, another distribution's ``training``), or None when it would. Only locates
    the module: nothing is imported (so torch is never loaded by this check)."""
    ours = _HERE.parent / name
    spec = importlib.util.find_spec(name)
    if spec is None:
        return f"{name}: not found next to {_HERE} (a broken installation of ddcl-incrt)"
    locations = [Path(p).resolve() for p in spec.submodule_search_locations or ()]
    if ours in locations:
        return None
    found = spec.origin or ", ".join(map(str, locations))
    return (
        f"`import {name}` would load {found}, not ddcl-incrt's {ours}: another module named {name!r} comes "
        "first on sys.path (rename yours, or install ddcl-incrt in its own virtual environment; "
        "docs/strategies.md, 'Installing next to other packages')"
    )


def docs_dir() -> Path:
    """The documentation of this installation: the checkout's ``docs/`` when run from a source tree
    (an editable install), else the data files a wheel installed under the environment's prefix
    (``<prefix>/share/ddcl-incrt/docs``, or the user scheme's)."""
    candidates = [_HERE.parent / "docs"]
    for scheme in (sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")):
        candidates.append(Path(sysconfig.get_path("data", scheme)) / DOCS_DATA_DIR)
    for c in candidates:
        if (c / "spec.md").is_file():
            return c
    raise FileNotFoundError(
        "the ddcl-incrt documentation is not installed: looked for spec.md in "
        + ", ".join(str(c) for c in dict.fromkeys(candidates))
    )


def doc_names(root: Path) -> list[str]:
    """The documents under ``root``, as the names ``ddcl-incrt docs NAME`` takes (``spec``,
    ``studies/cluster``)."""
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.md"))


__all__ = [
    "DOCS_DATA_DIR",
    "OWN_PACKAGES",
    "ForeignPackageError",
    "doc_names",
    "docs_dir",
    "foreign_package",
]
