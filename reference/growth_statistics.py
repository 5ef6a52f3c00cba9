"""What the INCRT growth rule measures on the layer at the probe (SPEC §3.1): the glue between
:mod:`reference.model` (parameters, forward) and :mod:`reference.incrt` (operators on arrays).

``C = X̄ᵀX̄/n`` of the layer input on the fixed probe, the heads' directional parts ``M_a^h``, the
residual operator ``A_res`` and the prototype masses ``n_j/n``. The trainer's growth phases, the G5
invariant and the accelerated path's differential tests all take these from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float64, Int64

from reference._arrays import F64Array, arr, check_array, check_dim
from reference.incrt.controller import GrowthState
from reference.incrt.operators import antisymmetric_part, directional_operator, residual_operator, second_moment
from reference.model import LayerConfig, ModelParams, forward, layer_input, score_operator


@dataclass(frozen=True, eq=False)
class Probe:
    """A fixed labelled batch on which the growth statistics are taken (SPEC §3: "deterministic")."""

    x: Float64[np.ndarray, "B T d_in"]
    labels: Int64[np.ndarray, " B"]

    def __post_init__(self) -> None:
        check_array("Probe.x", self.x, 3)
        if not isinstance(self.labels, np.ndarray) or not np.issubdtype(self.labels.dtype, np.integer):
            raise TypeError(f"Probe.labels: expected an integer numpy.ndarray, got {type(self.labels).__name__}")
        if self.labels.shape != (self.x.shape[0],):
            raise ValueError(f"Probe.labels: expected shape ({self.x.shape[0]},), got {self.labels.shape}")


def head_operators(params: ModelParams) -> dict[int, F64Array]:
    """``{h: M_a^h}`` with ``M_a^h = (M_h − M_hᵀ)/2``, ``M_h = W_Q^h W_K^hᵀ/(τ_h √d_k)``, by head id."""
    return {hid: antisymmetric_part(score_operator(head)) for hid, head in params.heads.items()}


def probe_second_moment(params: ModelParams, probe: Probe) -> F64Array:
    """``C = X̄ᵀX̄/n`` of the layer input ``X = x W_in + E_pos`` on the probe, flattened to n×d.

    The boundary between a probe and the layer: the probe's sequence length and input width must be
    the parameters' (:func:`reference.model.layer_input` itself trusts its input)."""
    check_dim("probe.x", probe.x, 1, params.E_pos.shape[0], "E_pos's sequence length T")
    check_dim("probe.x", probe.x, 2, params.W_in.shape[0], "W_in's input width d_in")
    X = layer_input(params, probe.x)
    return second_moment(arr(X.reshape(-1, X.shape[-1])))


def residual_for(params: ModelParams, C: F64Array, Q_cap: F64Array) -> F64Array:
    """``A_res = Π⊥ ½[C, M_a] Π⊥`` with ``M_a = Σ_{h∈𝓗} M_a^h`` over the heads of ``params`` (id order)."""
    Ms = [score_operator(params.heads[h]) for h in sorted(params.heads)]
    return residual_operator(C, directional_operator(Ms), Q_cap)


def prototype_masses(params: ModelParams, cfg: LayerConfig, probe: Probe, growth: GrowthState) -> F64Array:
    """``n_j/n`` on the probe tokens, in the order of ``growth.prototypes`` (matched by prototype id).

    Returned as computed, never clipped: a last-bit excursion outside ``[0, 1]`` from the softmax's
    rounding is accepted by :func:`reference.incrt.controller.prototype_prune_check` within the STOCHASTIC
    tolerance, and anything larger is an error there.
    """
    Q = forward(params, cfg, probe.x, probe.labels).Q
    col = {pid: j for j, pid in enumerate(params.prototype_ids)}
    mean = Q.mean(axis=0)
    return arr(np.array([mean[col[pid]] for pid in growth.prototype_ids], dtype=np.float64))


__all__ = [
    "Probe",
    "head_operators",
    "probe_second_moment",
    "prototype_masses",
    "residual_for",
]
