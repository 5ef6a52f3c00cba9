"""``reference`` never imports torch (nor ``accelerated``): checked in a fresh interpreter that records
every attempt to import a forbidden module, whether or not that module is installed."""

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


def test_reference_never_imports_torch_or_accelerated() -> None:
    result = probe_imports("reference", ["torch", "accelerated"])
    assert result["attempts"] == [], f"reference imported {result['attempts']}"
    assert result["errors"] == []


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
