"""Fresh interpreters for tests: a snippet run as a user pasting a conformance repro snippet runs it (from
the repository's root, without pytest's environment), and the environment of a child process that must
import this checkout wherever it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
