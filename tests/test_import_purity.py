"""The three layers: ``reference`` (the maths) never imports torch, ``training``, ``accelerated``,
``proofs_check``, ``ddcl_incrt`` or sympy (the spec stands on its own; everything else is built on it),
and ``training`` (the loop, records, checkpoints, data, files) imports of the repository only
``reference``, and never torch: checked in a fresh interpreter that records every
attempt to import a forbidden module, whether or not that module is installed, and by a source scan
that also sees imports inside function bodies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = r"""
import importlib, json, pkgutil, sys
forbidden = {forbidden!r}
attempts = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if any(name == f or name.startswith(f + ".") for f in forbidden):
            attempts.append(name)
            raise ImportError(f"blocked by the purity probe: {{name}}")
        return None

sys.meta_path.insert(0, Recorder())
pkg = importlib.import_module({package!r})
errors = []
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    try:
        importlib.import_module(info.name)
    except ImportError as exc:
        errors.append(f"{{info.name}}: {{exc}}")
print(json.dumps({{"attempts": sorted(set(attempts)), "errors": errors}}))
"""


def probe_imports(package: str, forbidden: list[str], extra_path: Path | None = None) -> dict[str, list[str]]:
    """Import ``package`` and all its submodules in a subprocess; return forbidden import attempts."""
    code = PROBE.format(package=package, forbidden=forbidden)
    env_path = [str(extra_path)] if extra_path else []
    cmd = [sys.executable, "-c", f"import sys; sys.path[:0] = {env_path!r}\n{code}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


FORBIDDEN_IN_REFERENCE = ["torch", "training", "accelerated", "proofs_check", "ddcl_incrt", "sympy"]
FORBIDDEN_IN_TRAINING = ["torch", "accelerated", "proofs_check", "ddcl_incrt", "sympy"]


def test_reference_never_imports_torch_or_accelerated() -> None:
    result = probe_imports("reference", FORBIDDEN_IN_REFERENCE)
    assert result["attempts"] == [], f"reference imported {result['attempts']}"
    assert result["errors"] == []


def test_training_imports_only_reference() -> None:
    result = probe_imports("training", FORBIDDEN_IN_TRAINING)
    assert result["attempts"] == [], f"training imported {result['attempts']}"
    assert result["errors"] == []
    root = Path(__file__).resolve().parents[1] / "training"
    assert forbidden_imports_in_source(root, set(FORBIDDEN_IN_TRAINING)) == []


def test_probe_detects_a_forbidden_import(tmp_path: Path) -> None:
    """Meta-test: the probe must fail on a package that does import the forbidden module."""
    pkg = tmp_path / "impure_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "uses_torch.py").write_text("import torch.nn\n")
    result = probe_imports("impure_pkg", ["torch"], extra_path=tmp_path)
    assert result["attempts"] == ["torch"], result


@pytest.mark.parametrize("module", ["numpy", "sympy"])
def test_probe_allows_what_is_not_forbidden(module: str, tmp_path: Path) -> None:
    pkg = tmp_path / "pure_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(f"import {module}\n")
    assert probe_imports("pure_pkg", ["torch"], extra_path=tmp_path)["attempts"] == []


def forbidden_imports_in_source(root: Path, forbidden: set[str]) -> list[str]:
    """Every ``import``/``from … import`` naming a forbidden top-level module anywhere in the source,
    function bodies included (the run-time probe only sees imports executed at module load)."""
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            found += [f"{path}:{node.lineno}: {n}" for n in names if n.split(".")[0] in forbidden]
    return found


def test_reference_source_never_imports_torch_even_lazily() -> None:
    root = Path(__file__).resolve().parents[1] / "reference"
    assert forbidden_imports_in_source(root, set(FORBIDDEN_IN_REFERENCE)) == []


def test_source_scan_detects_a_lazy_import(tmp_path: Path) -> None:
    """Meta-test: an import inside a function body is found."""
    (tmp_path / "lazy.py").write_text("def f():\n    import torch.nn as nn\n    return nn\n")
    assert len(forbidden_imports_in_source(tmp_path, {"torch"})) == 1
