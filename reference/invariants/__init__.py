"""Executable invariants, one module per claim family; each returns ``InvariantResult`` records."""

from reference.invariants.result import ClaimViolation, InvariantResult, assert_all

__all__ = ["ClaimViolation", "InvariantResult", "assert_all"]
