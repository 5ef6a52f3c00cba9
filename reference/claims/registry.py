"""The claim registry: one record per claim of SPEC §4, assembled from one module per family."""

from __future__ import annotations

from reference.claims.coupling import COUPLING_CLAIMS
from reference.claims.ddcl import DDCL_CLAIMS
from reference.claims.incrt import INCRT_CLAIMS
from reference.claims.records import Claim

REGISTRY: dict[str, Claim] = {c.id: c for c in (*DDCL_CLAIMS, *INCRT_CLAIMS, *COUPLING_CLAIMS)}


__all__ = [
    "REGISTRY",
]
