"""Which reference functions does each proof step really cross-check? (a maintainer's tool, run on purpose)

For every step of ``proofs_check``: record the ``reference`` functions the step's own code calls
(directly, from a ``proofs_check`` frame), then plant a small error in each one in turn
(:func:`proofs_check.core.perturbed`, monkeypatched in its defining module) and run the step again.
A function whose planted error makes the step's numeric part fail (symbolic part still proved) is a
real cross-check; ``tests/test_proofs.py`` requires exactly that of every declared one.
Prints, per step, the ``checks=(...)`` tuple to declare and compares it with the declared one.

    .venv/bin/python scripts/step_checks.py [STEP_ID ...]
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from proofs_check import ALL_STEPS
from proofs_check.core import PLANTS, Step, planted_outcome


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


def main(argv: list[str]) -> int:
    steps = [s for s in ALL_STEPS if not argv or s.id in argv]
    differ = 0
    for step in steps:
        called = called_reference_functions(step)
        outcomes = {f: {planted_outcome(step, f, plant) for plant in PLANTS} for f in called}
        found = tuple(f for f in called if "numeric" in outcomes[f])
        refused = tuple(f for f in called if outcomes[f] == {"refused"})  # tests/test_proofs.py lists these
        mark = "ok" if set(found) | set(refused) >= set(step.checks) >= set(found) else "DIFFERS"
        differ += mark != "ok"
        print(f"{step.id:6} {mark:8} checks={found!r}" + (f" refused-only={refused!r}" if refused else ""))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
