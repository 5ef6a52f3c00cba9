"""The shape of the house (docs/architecture.md): every module declares its public names, and the
documented module list is the real one."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("reference", "training", "proofs_check", "ddcl_incrt", "accelerated")
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for pkg in PACKAGES
    for p in (ROOT / pkg).rglob("*.py")
    if p.name != "__init__.py"
)


def imported_names(source: str) -> set[str]:
    """Names a module binds by ``import`` / ``from … import`` at top level (what it may re-export)."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def public_definitions(source: str) -> set[str]:
    """Top-level functions, classes and assigned names of a module that do not start with ``_``."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:  # `A = …` and `A, B = …`
                elts = t.elts if isinstance(t, ast.Tuple) else [t]
                names |= {e.id for e in elts if isinstance(e, ast.Name)}
    return {n for n in names if not n.startswith("_")}


@pytest.mark.parametrize("module", MODULES)
def test_every_module_declares_exactly_its_public_names(module: str) -> None:
    if module.startswith(("accelerated.", "ddcl_incrt.bench.")):
        pytest.importorskip("torch")
    mod = importlib.import_module(module)
    source = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text(encoding="utf-8")
    public = public_definitions(source)
    if not public:
        return
    declared = getattr(mod, "__all__", None)
    assert declared is not None, f"{module}: declare its public names in __all__ (the rest is private)"
    unknown = set(declared) - public - imported_names(source)  # a re-export must be imported
    assert public <= set(declared), f"{module}: __all__ lacks {sorted(public - set(declared))}"
    assert not unknown, f"{module}: __all__ names what the module neither defines nor imports: {sorted(unknown)}"


def test_the_public_names_check_can_fail() -> None:
    """Meta-test: a public function missing from __all__ is found."""
    assert public_definitions("def f():\n    pass\n\n\ndef _g():\n    pass\n\n__all__ = []\n") == {"f"}
    assert public_definitions("A, _B = 1, 2\nC: int = 3\n") == {"A", "C"}


def test_architecture_doc_names_every_reference_and_training_module() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:reference|training)(?:\.\w+)+)`", doc))
    modules = {m for m in MODULES if m.startswith(("reference.", "training."))}
    assert modules <= named, f"docs/architecture.md does not describe {sorted(modules - named)}"
    packages = {"reference.incrt", "reference.invariants", "reference.claims", "reference.falsify"}
    # a named thing is a module or package, or an attribute (function, class) of one that exists
    unknown = {
        n
        for n in named - modules - packages
        if n.rpartition(".")[0] not in modules
        or not hasattr(importlib.import_module(n.rpartition(".")[0]), n.rpartition(".")[2])
    }
    assert not unknown, f"docs/architecture.md names what does not exist: {sorted(unknown)}"
