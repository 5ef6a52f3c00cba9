"""Which reference functions does each proof step really cross-check? (a maintainer's tool, run on purpose)

For every step of ``proofs_check``: record the ``reference`` functions the step's own code calls
(directly, from a ``proofs_check`` frame; a call through a forwarding wrapper such as
``reference._arrays.finite_result`` counts as a call of the function it wraps), then plant a small
error in each one in turn (:func:`proofs_check.core.perturbed`, monkeypatched in its defining module)
and run the step again.
A function whose planted error makes the step's numeric part fail (symbolic part still proved) is a
real cross-check; ``tests/test_proofs.py`` requires exactly that of every declared one.
Prints, per step, the ``checks=(...)`` tuple to declare and compares it with the declared one.

    .venv/bin/python scripts/step_checks.py [STEP_ID ...]
"""

from __future__ import annotations

import inspect
import sys
from types import FrameType
from typing import Any

from proofs_check import ALL_STEPS
from proofs_check.core import PLANTS, Step, planted_outcome


def _cross_check_name(module: str, qualname: str, name: str) -> str | None:
    """``module.name`` for a module-level function of ``reference`` (not the tolerance table, which
    sets the bounds and is not a cross-check); ``None`` for anything else."""
    if module.startswith("reference") and module != "reference.tolerances" and "." not in qualname:
        return f"{module}.{name}"
    return None


def entered_function(frame: FrameType) -> str | None:
    """The reference function (``module.function``) a frame called from a step's own code enters.

    Either the function itself, or a forwarding wrapper bound to its public name: most reference
    functions are wrapped by ``reference._arrays.finite_result`` (its ``guarded``, made with
    ``functools.wraps``), and under pytest jaxtyping wraps them too, so the frame a step calls runs the
    wrapper's code in the wrapper's module. A wrapper is recognised by what it forwards to: a function
    held in its closure which, unwrapped (``__wrapped__``), is a reference function whose module binds
    its name to this very code. The wrapper's own calls (``check_overflow`` on the result) are not the
    step's: their caller is the wrapper, not the step.
    """
    code = frame.f_code
    direct = _cross_check_name(str(frame.f_globals.get("__name__", "")), code.co_qualname, code.co_name)
    if direct is not None:
        return direct
    for var in code.co_freevars:
        held = frame.f_locals.get(var)
        if not inspect.isfunction(held):
            continue
        original = inspect.unwrap(held)
        module = getattr(original, "__module__", None) or ""
        public = getattr(sys.modules.get(module), original.__name__, None)
        if getattr(public, "__code__", None) is code:
            return _cross_check_name(module, original.__qualname__, original.__name__)
    return None


def called_reference_functions(step: Step) -> list[str]:
    """The ``reference`` functions (``module.function``, in their defining module) ``step`` calls from
    its own code (a ``proofs_check`` frame), in first-call order, looking through forwarding wrappers."""
    seen: dict[str, None] = {}

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or frame.f_back is None:
            return
        if not str(frame.f_back.f_globals.get("__name__", "")).startswith("proofs_check"):
            return
        name = entered_function(frame)
        if name is not None:
            seen.setdefault(name, None)

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
