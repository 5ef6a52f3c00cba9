"""Which reference functions does each proof step really cross-check? (a maintainer's tool, run on purpose)

For every step of ``proofs_check``: record the ``reference`` functions the step's own code calls
(directly, from a ``proofs_check`` frame), then plant a small error in each one in turn
(:func:`proofs_check.core.perturbed`, monkeypatched in its defining module) and run the step again.
A function whose planted error unproves the step (symbolic part still proved) is a real cross-check.
Prints, per step, the ``checks=(...)`` tuple to declare and compares it with the declared one.

    .venv/bin/python scripts/step_checks.py [STEP_ID ...]
"""

from __future__ import annotations

import importlib
import sys
from types import FrameType
from typing import Any

from proofs_check import ALL_STEPS
from proofs_check.core import Step, perturbed


def called_reference_functions(step: Step) -> list[str]:
    seen: dict[str, None] = {}

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or frame.f_back is None:
            return
        module = frame.f_globals.get("__name__", "")
        caller = frame.f_back.f_globals.get("__name__", "")
        code = frame.f_code
        if (
            module.startswith("reference")
            and module != "reference.tolerances"  # the table sets the bounds; it is not a cross-check
            and caller.startswith("proofs_check")
            and "." not in code.co_qualname
        ):
            seen.setdefault(f"{module}.{code.co_name}", None)

    sys.setprofile(profile)
    try:
        step.run()
    finally:
        sys.setprofile(None)
    return list(seen)


def fails_when_planted(step: Step, qualified: str) -> bool:
    """Whether a planted error in ``qualified`` (upwards or downwards) unproves ``step``."""
    return any(_fails(step, qualified, sign) for sign in (1.0, -1.0))


def _fails(step: Step, qualified: str, sign: float) -> bool:
    module_name, _, name = qualified.rpartition(".")
    module = importlib.import_module(module_name)
    right = getattr(module, name)
    setattr(module, name, perturbed(right, sign))
    try:
        outcome = step.run()
    except (ValueError, TypeError, ArithmeticError):  # the planted error was refused loudly downstream
        return True
    finally:
        setattr(module, name, right)
    return outcome.symbolic_ok and not outcome.proved


def main(argv: list[str]) -> int:
    steps = [s for s in ALL_STEPS if not argv or s.id in argv]
    differ = 0
    for step in steps:
        found = tuple(f for f in called_reference_functions(step) if fails_when_planted(step, f))
        mark = "ok" if set(found) == set(step.checks) else "DIFFERS"
        differ += mark != "ok"
        print(f"{step.id:6} {mark:8} checks={found!r}")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
