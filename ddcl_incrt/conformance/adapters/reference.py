"""The reference as a conformance adapter: every operation, by its record's reference implementation.

Its outputs on the kit's cases are the golden vectors (``ddcl-incrt conformance --regenerate``). A
new operation in :data:`ddcl_incrt.conformance.operations.REGISTRY` is covered here without a change.
"""

from __future__ import annotations

from typing import Any

from ddcl_incrt.conformance.operations import REGISTRY, operation, operation_names


class ReferenceAdapter:
    """Every operation of the registry: the method ``name`` is the record's ``reference``. Subclasses
    (the planted bugs of :mod:`ddcl_incrt.conformance.broken`) override single operations."""

    name = "reference"

    @property
    def capabilities(self) -> frozenset[str]:
        return frozenset(operation_names())

    def __getattr__(self, name: str) -> Any:
        if name in operation_names():
            return operation(name).reference
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(op.name for op in REGISTRY)})


def reference_adapter() -> ReferenceAdapter:
    """The factory ``ddcl_incrt.conformance.adapters.reference:reference_adapter``."""
    return ReferenceAdapter()


__all__ = ["ReferenceAdapter", "reference_adapter"]
