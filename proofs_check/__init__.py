"""Sympy checks of every derivation step the claims rest on. ``ALL_STEPS`` is ordered by claim id."""

from __future__ import annotations

from proofs_check import backprop_steps, coupling_steps, ddcl_steps, incrt_steps
from proofs_check.core import Step, StepOutcome, is_zero

ALL_STEPS: tuple[Step, ...] = (*ddcl_steps.STEPS, *incrt_steps.STEPS, *coupling_steps.STEPS, *backprop_steps.STEPS)

__all__ = ["ALL_STEPS", "Step", "StepOutcome", "is_zero"]
