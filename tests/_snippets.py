"""Fresh interpreters and programs for tests: a snippet run as a user pasting a conformance repro snippet
runs it (from the repository's root, without pytest's environment), the environment of a child process
that must import this checkout wherever it runs, a maintainer's script loaded as a module, and headless
Chromium (which CI installs)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_snippet(code: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
    )


def child_env() -> dict[str, str]:
    """This process's environment with the repository first on ``PYTHONPATH``: a child interpreter started
    from another folder imports this checkout, not an installed copy."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` (a maintainer's script, not a package module) loaded as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass it defines looks its module up there
    spec.loader.exec_module(module)
    return module


def chromium() -> str:
    """Debian's ``chromium`` on PATH; skipped without it, except under CI, which installs it (.ci/run)."""
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not on PATH, and CI installs it: the report render tests cannot be skipped there")
        pytest.skip("chromium is not installed (CI installs it)")
    return exe


def headless_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run with its own profile folder (the flags the README gives)."""
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
