"""What a Python port is, and the types its operations exchange.

A port is an object with a ``name``, a ``capabilities`` set (the names of the operations it
implements, :func:`ddcl_incrt.conformance.operations.operation_names`; a port may implement any
subset, and the report lists what it did not cover) and one method per declared operation, with the
signature of that operation's ``reference`` in :mod:`ddcl_incrt.conformance.operations`. Every array
crossing the boundary is a float64 ``numpy.ndarray`` (integer arrays are int64); a port that
computes in another precision converts at its boundary and declares its tolerances
(:class:`ddcl_incrt.conformance.compare.TolerancePolicy`).

Axis names are SPEC §1's: ``n`` tokens, ``d`` model width, ``K`` prototypes, ``B`` sequences,
``T`` sequence length (``cfg.seq_len``), ``d_in`` input width, ``k`` active heads (id order), ``m``
captured directions, ``S`` training steps. Configurations, parameters and growth states are the
reference's frozen dataclasses (:class:`reference.model.LayerConfig`, :class:`reference.model.ModelParams`,
:class:`reference.incrt.controller.GrowthConfig` / ``GrowthState``, :class:`reference.optim.AdamState`):
plain data a port reads field by field. The language-neutral encoding of the same inputs and outputs
(for ports that are not Python) is :mod:`ddcl_incrt.conformance.cases`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from reference.incrt.controller import EventKind, GrowthConfig
from reference.log import LOSS_FIELDS
from reference.model import LayerConfig, ModelParams
from reference.optim import LearningRates

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

# layer_forward's outputs: arrays over B×T×d (X, U, Y, Z), n×K (D, Q, with n = B·T, row b·T + t),
# B×n_classes (logits), and the scalar loss terms.
FORWARD_ARRAYS: tuple[str, ...] = ("X", "U", "Y", "D", "Q", "Z", "logits")
FORWARD_SCALARS: tuple[str, ...] = LOSS_FIELDS

# trajectory events: one int64 row (step, kind code, head_id or -1, prototype_id or -1), the growth log's
# EventKind coded as an integer for ports in any language; near-ties are not events.
EVENT_CODES: Mapping[EventKind, int] = MappingProxyType(
    {EventKind.BIRTH: 1, EventKind.HEAD_PRUNE: 2, EventKind.PROTOTYPE_PRUNE: 3}
)


@dataclass(frozen=True, eq=False)
class TrajectoryInputs:
    """A short training run given completely: nothing is drawn at random inside the port.

    Step ``s`` (1-based) is one Adam step (the reference's :class:`reference.optim.Adam`, default
    betas and ε, rates ``lr`` by group) on ``L = L_task + λ_q L_q`` for the minibatch
    ``batches_x[s-1]`` (B×T×d_in), ``batches_labels[s-1]`` (B); after every step with
    ``s % check_every == 0`` comes a growth check on the fixed probe ``probe_x`` / ``probe_labels``
    (SPEC §3, in the order grow, prune heads, prune prototypes, statistics by the exact oracle,
    thresholds ``growth_cfg``). A head born with id ``h`` starts from ``births[h]`` (flat names
    ``W_Q, W_K, W_V, W_O, s``) with fresh Adam moments; pruning drops a head's moments and a
    prototype's column of ``P``'s moments.
    """

    layer_cfg: LayerConfig
    growth_cfg: GrowthConfig
    check_every: int
    lr: LearningRates
    seed: int  # the reference's birth seed; ``births`` holds what it gives, so a port needs only ``births``
    params: ModelParams  # initial parameters: one head (id 0), K_max prototypes
    batches_x: F64  # S×B×T×d_in
    batches_labels: I64  # S×B
    probe_x: F64  # B_probe×T×d_in
    probe_labels: I64  # B_probe
    births: Mapping[int, Mapping[str, F64]]  # head id -> {W_Q: d×d_k, W_K: d×d_k, W_V: d×d_v, W_O: d_v×d, s: ()}


@dataclass(frozen=True, eq=False)
class CheckStatistics:
    """What a port measured at one growth check of a trajectory, so that the kit sees the statistics and
    not only the decisions they led to: ``step``; ``lam_max``, ``λ_max(A_res)`` on the probe at the
    check's start (the growth test's statistic, before any decision of the check); ``head_strength``,
    ``G_h = ‖C M_a^h‖_F`` of every head active at the check's start, by head id (the prune rule's
    statistic); ``Q_cap`` (d×m), the captured basis after the check's decisions. The kit compares the
    captured subspace as the sign-free projector ``Q_cap Q_capᵀ`` (an eigenvector's sign is free)."""

    step: int
    lam_max: float
    head_strength: Mapping[int, float]
    Q_cap: F64


@dataclass(frozen=True, eq=False)
class TrajectoryOutputs:
    """What a port reports of a trajectory: ``losses`` S×3 (``L, L_task, L_q`` at each step's
    parameters before the update), ``events`` E×4 int64 rows ``(step, kind, head_id, prototype_id)``
    in the order they happened (kind codes :data:`EVENT_CODES`: birth 1, head prune 2, prototype prune 3;
    an id that does not apply is ``-1``), the final parameters, and ``checks``: one
    :class:`CheckStatistics` per growth check, in step order."""

    losses: F64
    events: I64
    final_params: ModelParams
    checks: Sequence[CheckStatistics]


@runtime_checkable
class Adapter(Protocol):
    """Every port: a name for the report and the operations it implements (names of registry records)."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> frozenset[str]: ...


__all__ = [
    "EVENT_CODES",
    "F64",
    "FORWARD_ARRAYS",
    "FORWARD_SCALARS",
    "I64",
    "Adapter",
    "CheckStatistics",
    "TrajectoryInputs",
    "TrajectoryOutputs",
]
