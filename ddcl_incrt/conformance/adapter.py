"""What a Python port implements for the conformance kit: typed protocols, documented with shapes.

A port is an object with a ``name``, a ``capabilities`` set (the operation names below it
implements; a port may implement any subset, and the report lists what it did not cover) and one
method per declared operation. Every array crossing the boundary is a float64 ``numpy.ndarray``
(integer arrays are int64); a port that computes in another precision converts at its boundary and
declares its tolerances (:class:`ddcl_incrt.conformance.compare.TolerancePolicy`).

Axis names are SPEC §1's: ``n`` tokens, ``d`` model width, ``K`` prototypes, ``B`` sequences,
``T`` sequence length (``cfg.seq_len``), ``d_in`` input width, ``k`` active heads (id order), ``m``
captured directions, ``S`` training steps. Configurations, parameters and growth states are the
reference's frozen dataclasses (:class:`reference.model.LayerConfig`, :class:`reference.model.ModelParams`,
:class:`reference.incrt.controller.GrowthConfig` / ``GrowthState``, :class:`reference.optim.AdamState`):
plain data a port reads field by field. The language-neutral encoding of the same inputs and outputs
(for ports that are not Python) is :mod:`ddcl_incrt.conformance.cases`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from reference.incrt.controller import EventKind, GrowthConfig, GrowthState
from reference.log import LOSS_FIELDS
from reference.model import LayerConfig, ModelParams
from reference.optim import AdamState, LearningRates

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

PRIMITIVE_OPERATIONS: tuple[str, ...] = (
    "squared_distances",
    "soft_assignments",
    "quantisation_loss",
    "ols_loss",
    "prototype_variance",
    "free_energy",
    "mean_entropy",
    "grad_quantisation_fixed_Q",
    "grad_free_energy",
    "grad_variance_fixed_Q",
    "grad_quantisation_full",
)
LAYER_OPERATIONS: tuple[str, ...] = ("layer_forward", "layer_gradients")
GROWTH_OPERATIONS: tuple[str, ...] = (
    "growth_statistics",
    "static_growth",
    "grow_decision",
    "prune_decision",
    "prototype_prune_decision",
)
TRAINING_OPERATIONS: tuple[str, ...] = ("train_step", "trajectory")
OPERATIONS: tuple[str, ...] = PRIMITIVE_OPERATIONS + LAYER_OPERATIONS + GROWTH_OPERATIONS + TRAINING_OPERATIONS
GROUPS: dict[str, tuple[str, ...]] = {
    "primitives": PRIMITIVE_OPERATIONS,
    "layer": LAYER_OPERATIONS,
    "growth": GROWTH_OPERATIONS,
    "training": TRAINING_OPERATIONS,
}

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
class TrajectoryOutputs:
    """What a port reports of a trajectory: ``losses`` S×3 (``L, L_task, L_q`` at each step's
    parameters before the update), ``events`` E×4 int64 rows ``(step, kind, head_id, prototype_id)``
    in the order they happened (kind codes :data:`EVENT_CODES`: birth 1, head prune 2, prototype prune 3;
    an id that does not apply is ``-1``) and the final parameters."""

    losses: F64
    events: I64
    final_params: ModelParams


@runtime_checkable
class Adapter(Protocol):
    """Every port: a name for the report and the operations it implements (a subset of :data:`OPERATIONS`)."""

    name: str
    capabilities: frozenset[str]


class PrimitivesPort(Protocol):
    """The DDCL block on arrays (names and meanings as :mod:`reference.ddcl`); ``Y`` n×d, ``P`` d×K,
    ``Q`` n×K row-stochastic, ``D`` n×K squared distances, ``T_P > 0``."""

    def squared_distances(self, Y: F64, P: F64) -> F64:
        """``D_tj = ‖y_t − p_j‖²`` (n×K)."""
        ...

    def soft_assignments(self, D: F64, T_P: float) -> F64:
        """``q_t = softmax(−D_t/T_P)`` (n×K)."""
        ...

    def quantisation_loss(self, Y: F64, P: F64, Q: F64) -> float:
        """``L_q = (1/n) Σ_t Σ_j q_tj ‖y_t − p_j‖²``."""
        ...

    def ols_loss(self, Y: F64, P: F64, Q: F64) -> float:
        """``L_OLS = (1/n) Σ_t ‖y_t − P q_t‖²``."""
        ...

    def prototype_variance(self, P: F64, Q: F64) -> float:
        """``V = (1/n) Σ_t Σ_j q_tj ‖p_j − P q_t‖²``."""
        ...

    def free_energy(self, Y: F64, P: F64, T_P: float) -> float:
        """``F = −(T_P/n) Σ_t log Σ_j exp(−D_tj/T_P)``."""
        ...

    def mean_entropy(self, Q: F64) -> float:
        """``H̄ = −(1/n) Σ_t Σ_j q_tj log q_tj`` (``0 log 0 = 0``)."""
        ...

    def grad_quantisation_fixed_Q(self, Y: F64, P: F64, Q: F64) -> tuple[F64, F64]:
        """``(∇_Y L_q, ∇_P L_q)`` with ``Q`` held fixed (n×d, d×K)."""
        ...

    def grad_free_energy(self, Y: F64, P: F64, T_P: float) -> tuple[F64, F64]:
        """``(∇_Y F, ∇_P F)`` (n×d, d×K)."""
        ...

    def grad_variance_fixed_Q(self, P: F64, Q: F64) -> F64:
        """``∇_P V`` with ``Q`` held fixed (d×K)."""
        ...

    def grad_quantisation_full(self, Y: F64, P: F64, T_P: float) -> tuple[F64, F64]:
        """``(∇_Y L_q, ∇_P L_q)`` with ``Q = softmax(−D/T_P)`` differentiated too (n×d, d×K)."""
        ...


class LayerPort(Protocol):
    """The whole layer (:mod:`reference.model`): ``x`` B×T×d_in, ``labels`` B int64."""

    def layer_forward(self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> Mapping[str, F64]:
        """``{name: value}`` for :data:`FORWARD_ARRAYS` (X, U, Y, Z: B×T×d; D, Q: n×K; logits:
        B×n_classes) and :data:`FORWARD_SCALARS` (0-d arrays or floats)."""
        ...

    def layer_gradients(self, cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> Mapping[str, F64]:
        """``∂L/∂θ`` for every flat parameter name of :func:`reference.surgery.flatten` (same shapes)."""
        ...


class GrowthPort(Protocol):
    """The growth statistics and decisions (SPEC §3)."""

    def growth_statistics(self, params: ModelParams, probe_x: F64, Q_cap: F64) -> Mapping[str, F64]:
        """On the probe ``probe_x`` (B×T×d_in) with captured basis ``Q_cap`` (d×m): ``C`` (d×d),
        ``M_a`` (k×d×d, ``M_a^h`` by head id), ``A_res`` (d×d), ``spectrum`` (d, eigenvalues of
        ``A_res`` in non-increasing order) and ``G_h`` (k, ``‖C M_a^h‖_F`` by head id)."""
        ...

    def static_growth(self, A: F64, theta: float) -> tuple[F64, F64]:
        """Greedy capture on a static symmetric ``A`` (d×d): while ``λ_max(Π⊥AΠ⊥) > θ`` append the top
        unit eigenvector. Returns ``(Q_cap, lam_births)``: d×m in birth order, and the m statistics."""
        ...

    def grow_decision(
        self, state: GrowthState, config: GrowthConfig, lam_max: float, u_plus: F64, step: int, new_head_id: int
    ) -> GrowthState:
        """SPEC §3.2 given the statistic ``(λ_max(A_res), u₊)``: the state after the check."""
        ...

    def prune_decision(
        self, state: GrowthState, config: GrowthConfig, C: F64, M_a: Mapping[int, F64], step: int
    ) -> GrowthState:
        """SPEC §3.3 given ``C`` and every active head's ``M_a^h`` (by id): the state after the check."""
        ...

    def prototype_prune_decision(self, state: GrowthState, config: GrowthConfig, mass: F64, step: int) -> GrowthState:
        """SPEC §3.5 given the masses ``n_j/n`` (K, in ``state.prototypes`` order): the state after the check."""
        ...


class TrainingPort(Protocol):
    """One optimiser step and a whole short run."""

    def train_step(
        self, cfg: LayerConfig, params: ModelParams, adam: AdamState, x: F64, labels: I64, lr: LearningRates
    ) -> tuple[ModelParams, AdamState]:
        """One Adam step (default betas, ε) on ``L = L_task + λ_q L_q``; a parameter without moments in
        ``adam`` (a head just born) starts from zero moments and its own step count 0."""
        ...

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        """The run :class:`TrajectoryInputs` describes."""
        ...


def load_adapter(spec: str) -> Adapter:
    """``package.module:factory`` → ``factory()``, checked to be an :class:`Adapter` whose capabilities
    are known operation names."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"adapter: expected 'package.module:factory', got {spec!r}")
    module_name, factory_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"adapter: cannot import {module_name!r} of {spec!r} ({exc})") from None
    factory = getattr(module, factory_name, None)
    if factory is None or not callable(factory):
        raise ValueError(f"adapter: {module_name!r} has no callable {factory_name!r}")
    adapter = factory()
    check_adapter(adapter)
    return adapter  # type: ignore[no-any-return]


def check_adapter(adapter: object) -> Adapter:
    """Raise unless ``adapter`` has a ``name``, known ``capabilities`` and a method for each."""
    if not isinstance(adapter, Adapter):
        raise TypeError(f"adapter: expected an object with `name` and `capabilities`, got {type(adapter).__name__}")
    unknown = sorted(set(adapter.capabilities) - set(OPERATIONS))
    if unknown:
        raise ValueError(f"adapter.capabilities: unknown operations {unknown}; known: {list(OPERATIONS)}")
    missing = sorted(op for op in adapter.capabilities if not callable(getattr(adapter, op, None)))
    if missing:
        raise ValueError(f"adapter.capabilities: declares {missing} but has no such methods")
    return adapter


__all__ = [
    "EVENT_CODES",
    "F64",
    "FORWARD_ARRAYS",
    "FORWARD_SCALARS",
    "GROUPS",
    "GROWTH_OPERATIONS",
    "I64",
    "LAYER_OPERATIONS",
    "OPERATIONS",
    "PRIMITIVE_OPERATIONS",
    "TRAINING_OPERATIONS",
    "Adapter",
    "GrowthPort",
    "LayerPort",
    "PrimitivesPort",
    "TrainingPort",
    "TrajectoryInputs",
    "TrajectoryOutputs",
    "check_adapter",
    "load_adapter",
]
