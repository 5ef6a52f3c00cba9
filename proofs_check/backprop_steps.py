"""Symbolic steps for backprop claims (filled in by the issue that implements them)."""

from __future__ import annotations

from proofs_check.core import Step

STEPS: tuple[Step, ...] = ()
