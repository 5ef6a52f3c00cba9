"""The kit's operations: one :class:`Operation` record each, and every consumer reads the records.

A record says everything the kit knows of an operation:

* ``name``: the method a Python port implements, and the ``operation`` of its cases;
* ``group``: the report's group (``primitives``, ``layer``, ``growth``, ``training``);
* ``reference``: the reference implementation, whose signature and docstring ARE the port's method's
  (arrays are float64 ``numpy`` arrays, configurations and states the reference's frozen dataclasses);
* ``call``: how a case's encoded inputs become that method's arguments and its result named arrays
  (typed by ``reference``: mypy checks each call against the reference's signature);
* ``cases``: the case generator (:mod:`ddcl_incrt.conformance.cases`), given the operation's name;
* ``compare``: how a port's outputs are checked (:mod:`ddcl_incrt.conformance.compare`);
* ``inputs`` / ``outputs``: the encoded names and shapes, for docs/porting.md's table;
* ``extras``: what else the golden vectors carry for it (a trajectory's decision statistics).

The golden vectors (:func:`reference_outputs`), the runner's dispatch (:func:`call_port`), the report's
groups (:func:`groups`), the vector files' check of operation names, the reference adapter (every
record's ``reference``) and docs/porting.md's table (:func:`porting_table`, kept equal by a test)
all read :data:`REGISTRY`. Adding an operation is one record here, plus the vectors regenerated
(``ddcl-incrt conformance --regenerate``) and the table pasted from :func:`porting_table`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypeVar, cast

import numpy as np

from ddcl_incrt.conformance import cases
from ddcl_incrt.conformance.adapter import (
    F64,
    FORWARD_ARRAYS,
    FORWARD_SCALARS,
    I64,
    Adapter,
    TrajectoryInputs,
    TrajectoryOutputs,
)
from ddcl_incrt.conformance.cases import Arrays, Case
from ddcl_incrt.conformance.compare import (
    FIELD_BY_FIELD,
    STATIC_CAPTURE,
    TRAJECTORY,
    CheckResult,
    Comparator,
    TolerancePolicy,
    compare_outputs,
)
from ddcl_incrt.conformance.trajectory import probe_of, run_trajectory
from reference import dcl, ddcl
from reference.backward import loss_and_gradients
from reference.growth_statistics import head_operators, probe_second_moment, residual_for
from reference.incrt import trackers
from reference.incrt.capture import greedy_capture, greedy_capture_tracked
from reference.incrt.controller import (
    GrowthConfig,
    GrowthState,
    prototype_prune_check,
    prune_check,
)
from reference.incrt.controller import (
    grow_decision as reference_grow_decision,
)
from reference.incrt.operators import eigenvalues_desc, head_strength
from reference.model import LayerConfig, ModelParams, forward
from reference.optim import Adam, AdamState, LearningRates
from reference.surgery import flatten, unflatten
from training.trainer import ReferenceEngine

Group: TypeAlias = Literal["primitives", "layer", "growth", "training"]
GROUP_ORDER: tuple[Group, ...] = ("primitives", "layer", "growth", "training")

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True, eq=False)
class Operation(Generic[_F]):
    """One operation of the kit (the module docstring says what each field is for)."""

    name: str
    group: Group
    reference: _F
    call: Callable[[_F, Case], Arrays]
    cases: Callable[[str], list[Case]]
    inputs: str
    outputs: str
    compare: Comparator = FIELD_BY_FIELD
    extras: Callable[[Case], Arrays] | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"Operation.name: {self.name!r} must be a Python identifier (a port's method name)")
        if self.group not in GROUP_ORDER:
            raise ValueError(f"Operation.group: expected one of {GROUP_ORDER}, got {self.group!r}")


# ==================================================================================================
# The reference implementations of the operations that are not one reference function as they stand
# ==================================================================================================


def layer_forward(cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> Mapping[str, F64]:
    """The layer's forward pass (:func:`reference.model.forward`) on ``x`` (B×T×d_in) and ``labels`` (B):
    ``{name: value}`` for :data:`FORWARD_ARRAYS` (X, U, Y, Z: B×T×d; D, Q: n×K with n = B·T, row
    ``b·T + t``; logits: B×n_classes) and :data:`FORWARD_SCALARS` (the loss terms, 0-d)."""
    cache = forward(params, cfg, x, labels)
    return {k: np.array(getattr(cache, k), dtype=np.float64) for k in FORWARD_ARRAYS + FORWARD_SCALARS}


def layer_gradients(cfg: LayerConfig, params: ModelParams, x: F64, labels: I64) -> Mapping[str, F64]:
    """``∂L/∂θ`` (:func:`reference.backward.loss_and_gradients`) for every flat parameter name of
    :func:`reference.surgery.flatten`, in that parameter's shape."""
    return loss_and_gradients(params, cfg, x, labels)[1]


def growth_statistics(params: ModelParams, probe_x: F64, Q_cap: F64) -> Mapping[str, F64]:
    """On the probe ``probe_x`` (B×T×d_in) with captured basis ``Q_cap`` (d×m): ``C`` (d×d), ``M_a``
    (k×d×d, ``M_a^h`` by head id), ``A_res`` (d×d), ``spectrum`` (d, eigenvalues of ``A_res``,
    non-increasing) and ``G_h`` (k, ``‖C M_a^h‖_F`` by head id); SPEC §3.1."""
    C_ = probe_second_moment(params, probe_of(probe_x))
    Ms = head_operators(params)
    A = residual_for(params, C_, Q_cap)
    ids = sorted(Ms)
    return {
        "C": C_,
        "M_a": np.stack([Ms[h] for h in ids]),
        "A_res": A,
        "spectrum": eigenvalues_desc(A),
        "G_h": np.array([head_strength(C_, Ms[h]) for h in ids], dtype=np.float64),
    }


def static_growth(A: F64, theta: float) -> tuple[F64, F64]:
    """Greedy capture on a static symmetric ``A`` (d×d, :func:`reference.incrt.capture.greedy_capture`):
    while ``λ_max(Π⊥AΠ⊥) > θ`` append the top unit eigenvector. ``(Q_cap, lam_births)``: d×m in
    birth order, and the m statistics."""
    res = greedy_capture(A, theta)
    return res.Q_cap, np.array(res.lam_births, dtype=np.float64)


def grow_decision(
    state: GrowthState, config: GrowthConfig, lam_max: float, u_plus: F64, step: int, new_head_id: int
) -> GrowthState:
    """SPEC §3.2 given the statistic ``(λ_max(A_res), u₊)``: the state after the check."""
    return reference_grow_decision(state, config, (lam_max, u_plus), step, new_head_id=new_head_id)[0]


def prune_decision(state: GrowthState, config: GrowthConfig, C: F64, M_a: Mapping[int, F64], step: int) -> GrowthState:
    """SPEC §3.3 given ``C`` and every active head's ``M_a^h`` (by id): the state after the check."""
    return prune_check(state, config, C, M_a, step)[0]


def prototype_prune_decision(state: GrowthState, config: GrowthConfig, mass: F64, step: int) -> GrowthState:
    """SPEC §3.5 given the masses ``n_j/n`` (K, in ``state.prototypes`` order): the state after the check."""
    return prototype_prune_check(state, config, mass, step)[0]


def train_step(
    cfg: LayerConfig, params: ModelParams, adam: AdamState, x: F64, labels: I64, lr: LearningRates
) -> tuple[ModelParams, AdamState]:
    """One Adam step (default betas, ε; rates by group) on ``L = L_task + λ_q L_q``; a parameter without
    moments in ``adam`` (a head just born) starts from zero moments and its own step count 0."""
    _, grads = loss_and_gradients(params, cfg, x, labels)
    new, state = Adam(lr=lr).step(adam, flatten(params), grads)
    return unflatten(new, like=params), state


def oja_track(A: F64, w0: F64, eta: float, n_steps: int) -> tuple[F64, float]:
    """``n_steps`` normalised Oja steps on a static symmetric ``A`` (d×d) from ``w0`` (d; normalised first):
    ``w ← (w + η(Aw − (wᵀAw)w))/‖·‖`` (:func:`reference.incrt.trackers.oja_track`). ``(w, wᵀAw/wᵀw)``:
    the final vector and its Rayleigh quotient (the top-eigenvalue estimate)."""
    res = trackers.oja_track(A, w0, eta, n_steps)
    return res.w, res.estimate


def mca_exin_track(A: F64, w0: F64, eta: float, n_steps: int) -> tuple[F64, F64, float]:
    """``n_steps`` MCA-EXIN steps on a static symmetric ``A`` from ``w0`` (not normalised):
    ``w ← w − α_t(Aw − r(w)w)`` with ``α_t = η/‖w_t‖²`` (:func:`reference.incrt.trackers.mca_exin_track`).
    ``(w, alphas, r(w))``: the final vector, the ``n_steps`` effective steps and the Rayleigh quotient
    (the bottom-eigenvalue estimate)."""
    res = trackers.mca_exin_track(A, w0, eta, n_steps)
    return res.w, res.alphas, res.estimate


class _Starts(np.random.Generator):
    """The random source :func:`reference.incrt.capture.greedy_capture_tracked` draws each round's start
    from, replaced by the given rows (so a port gets the starts as data); any other draw is refused."""

    def __init__(self, starts: F64) -> None:
        super().__init__(np.random.PCG64(0))
        self._rows = iter(np.asarray(starts, dtype=np.float64))

    def standard_normal(self, size: Any = None, *args: Any, **kwargs: Any) -> Any:
        row: F64 = next(self._rows)
        if args or kwargs or row.shape != (size,):
            raise ValueError(f"starts: round start of shape {row.shape} asked for as standard_normal({size})")
        return row


def tracked_growth(A: F64, theta: float, starts: F64, n_steps: int, eta: float) -> tuple[F64, F64]:
    """Greedy capture on a static symmetric ``A`` (d×d) with an Oja tracker per round
    (:func:`reference.incrt.capture.greedy_capture_tracked`): round ``k`` starts from ``starts[k]``
    projected onto the complement of the directions captured so far, runs ``n_steps`` steps of
    ``oja_track`` with step ``eta`` on ``Π⊥AΠ⊥``, and captures the tracker's direction (re-orthogonalised,
    normalised) while its Rayleigh quotient is ``> θ`` and fewer than d are captured. ``(Q_cap,
    lam_births)``: d×m in birth order and the m Rayleigh quotients."""
    res = greedy_capture_tracked(A, theta, rng=_Starts(starts), n_steps=n_steps, eta=eta)
    return res.Q_cap, np.array(res.lam_births, dtype=np.float64)


def trajectory(inputs: TrajectoryInputs) -> TrajectoryOutputs:
    """The run :class:`ddcl_incrt.conformance.adapter.TrajectoryInputs` describes."""
    return run_trajectory(ReferenceEngine(), inputs)[0]


# ==================================================================================================
# Encoding a call's result
# ==================================================================================================


def _f64(value: object) -> np.ndarray:
    return np.array(value, dtype=np.float64)


def _value(v: object) -> Arrays:
    return {"value": _f64(v)}


def _grads(pair: tuple[np.ndarray, np.ndarray]) -> Arrays:
    gY, gP = pair
    return {"grad_Y": _f64(gY), "grad_P": _f64(gP)}


def _named(out: Mapping[str, object]) -> Arrays:
    return {k: _f64(v) for k, v in out.items()}


def _layer_inputs(c: Case) -> tuple[LayerConfig, ModelParams, np.ndarray, np.ndarray]:
    params = cases.decode_params("params", c.inputs, c.scalars)
    return cases.decode_layer_config(c.scalars), params, c.array("x"), np.array(c.array("labels"), dtype=np.int64)


def _static_capture(result: tuple[np.ndarray, np.ndarray], d: int) -> Arrays:
    Q, lam = result
    return {"Q_cap": _f64(Q).reshape(d, -1), "lam_births": _f64(lam).reshape(-1)}


def _prune_inputs(c: Case) -> tuple[GrowthState, GrowthConfig, np.ndarray, dict[int, np.ndarray], int]:
    state = cases.decode_growth_state("state", c.inputs)
    M_a = {h.head_id: c.array(f"M_a.{h.head_id}") for h in state.heads}
    return state, cases.decode_growth_config(c.scalars), c.array("C"), M_a, int(c.scalar("step"))


def _train_step_outputs(result: tuple[ModelParams, AdamState]) -> Arrays:
    params, adam = result
    arrays, _ = cases.encode_params("params", params)
    return {**arrays, **cases.encode_adam(adam)}


def _trajectory_extras(c: Case) -> Arrays:
    return {"ref.decision_pairs": run_trajectory(ReferenceEngine(), cases.decode_trajectory(c))[1]}


_YPQ = "`Y` n×d, `P` d×K, `Q` n×K"
_STATE = "`state.*`, `config.*`"

# ==================================================================================================
# The registry
# ==================================================================================================

# Not annotated as tuple[Operation[Any], ...]: that context would make every record's F Any, and mypy
# would then no longer check each ``call`` against its ``reference``'s signature (planting a wrong call
# in one record makes mypy report it).
_RECORDS = (
    # primitives (reference.ddcl) --------------------------------------------------------------
    Operation(
        name="squared_distances",
        group="primitives",
        reference=ddcl.squared_distances,
        call=lambda f, c: {"D": _f64(f(c.array("Y"), c.array("P")))},
        cases=cases.primitive_cases("Y", "P"),
        inputs="`Y` n×d, `P` d×K",
        outputs="`D` n×K",
    ),
    Operation(
        name="soft_assignments",
        group="primitives",
        reference=ddcl.soft_assignments,
        call=lambda f, c: {"Q": _f64(f(c.array("D"), float(c.scalar("T_P"))))},
        cases=cases.primitive_cases("D", temperature=True),
        inputs="`D` n×K, `T_P`",
        outputs="`Q` n×K",
    ),
    Operation(
        name="quantisation_loss",
        group="primitives",
        reference=ddcl.quantisation_loss,
        call=lambda f, c: _value(f(c.array("Y"), c.array("P"), c.array("Q"))),
        cases=cases.primitive_cases("Y", "P", "Q"),
        inputs=_YPQ,
        outputs="`value` ()",
    ),
    Operation(
        name="ols_loss",
        group="primitives",
        reference=ddcl.ols_loss,
        call=lambda f, c: _value(f(c.array("Y"), c.array("P"), c.array("Q"))),
        cases=cases.primitive_cases("Y", "P", "Q"),
        inputs=_YPQ,
        outputs="`value` ()",
    ),
    Operation(
        name="prototype_variance",
        group="primitives",
        reference=ddcl.prototype_variance,
        call=lambda f, c: _value(f(c.array("P"), c.array("Q"))),
        cases=cases.primitive_cases("P", "Q"),
        inputs="`P` d×K, `Q` n×K",
        outputs="`value` ()",
    ),
    Operation(
        name="free_energy",
        group="primitives",
        reference=ddcl.free_energy,
        call=lambda f, c: _value(f(c.array("Y"), c.array("P"), float(c.scalar("T_P")))),
        cases=cases.primitive_cases("Y", "P", temperature=True),
        inputs="`Y` n×d, `P` d×K, `T_P`",
        outputs="`value` ()",
    ),
    Operation(
        name="mean_entropy",
        group="primitives",
        reference=ddcl.mean_entropy,
        call=lambda f, c: _value(f(c.array("Q"))),
        cases=cases.primitive_cases("Q"),
        inputs="`Q` n×K",
        outputs="`value` ()",
    ),
    Operation(
        name="grad_quantisation_fixed_Q",
        group="primitives",
        reference=ddcl.grad_quantisation_fixed_Q,
        call=lambda f, c: _grads(f(c.array("Y"), c.array("P"), c.array("Q"))),
        cases=cases.primitive_cases("Y", "P", "Q"),
        inputs=_YPQ,
        outputs="`grad_Y` n×d, `grad_P` d×K",
    ),
    Operation(
        name="grad_free_energy",
        group="primitives",
        reference=ddcl.grad_free_energy,
        call=lambda f, c: _grads(f(c.array("Y"), c.array("P"), float(c.scalar("T_P")))),
        cases=cases.primitive_cases("Y", "P", temperature=True),
        inputs="`Y` n×d, `P` d×K, `T_P`",
        outputs="`grad_Y` n×d, `grad_P` d×K",
    ),
    Operation(
        name="grad_variance_fixed_Q",
        group="primitives",
        reference=ddcl.grad_variance_fixed_Q,
        call=lambda f, c: {"grad_P": _f64(f(c.array("P"), c.array("Q")))},
        cases=cases.primitive_cases("P", "Q"),
        inputs="`P` d×K, `Q` n×K",
        outputs="`grad_P` d×K",
    ),
    Operation(
        name="grad_quantisation_full",
        group="primitives",
        reference=ddcl.grad_quantisation_full,
        call=lambda f, c: _grads(f(c.array("Y"), c.array("P"), float(c.scalar("T_P")))),
        cases=cases.primitive_cases("Y", "P", temperature=True),
        inputs="`Y` n×d, `P` d×K, `T_P` (`Q = softmax(−D/T_P)` differentiated too)",
        outputs="`grad_Y` n×d, `grad_P` d×K",
    ),
    Operation(
        name="hessian_free_energy",
        group="primitives",
        reference=ddcl.hessian_free_energy,
        call=lambda f, c: {"H": _f64(f(c.array("Y"), c.array("P"), float(c.scalar("T_P"))))},
        cases=cases.primitive_cases("Y", "P", temperature=True),
        inputs="`Y` n×d, `P` d×K, `T_P`",
        outputs="`H` dK×dK (`∇²_P F`, index `j·d + i` for `P[i, j]`)",
    ),
    Operation(
        name="hessian_quantisation",
        group="primitives",
        reference=ddcl.hessian_quantisation,
        call=lambda f, c: {"H": _f64(f(c.array("Y"), c.array("P"), float(c.scalar("T_P"))))},
        cases=cases.primitive_cases("Y", "P", temperature=True),
        inputs="`Y` n×d, `P` d×K, `T_P`",
        outputs="`H` dK×dK (`∇²_P L_q` through `Q`, index `j·d + i`)",
    ),
    Operation(
        name="prototype_step",
        group="primitives",
        reference=ddcl.prototype_step,
        call=lambda f, c: {
            "P_next": _f64(f(c.array("Y"), c.array("P"), float(c.scalar("T_P")), float(c.scalar("eta"))))
        },
        cases=cases.primitive_cases("Y", "P", temperature=True, extra={"eta": 0.5}),
        inputs="`Y` n×d, `P` d×K, `T_P`, `eta`",
        outputs="`P_next` d×K (`P − η∇_P F`, the encoder frozen)",
    ),
    Operation(
        name="dcl_prototypes",
        group="primitives",
        reference=dcl.dcl_prototypes,
        call=lambda f, c: {"P": _f64(f(c.array("Y_b"), c.array("W"), c.array("b")))},
        cases=cases.dcl_cases("Y_b", "W", "b"),
        inputs="`Y_b` n_b×d, `W` n_b×K, `b` K",
        outputs="`P` d×K (`Y_bᵀW + 1bᵀ`, the dual competitive layer)",
    ),
    Operation(
        name="dcl_step",
        group="primitives",
        reference=dcl.dcl_step,
        call=lambda f, c: dict(
            zip(
                ("W", "b"),
                map(_f64, f(c.array("Y_b"), c.array("W"), c.array("b"), c.array("grad_P"), float(c.scalar("eta")))),
                strict=True,
            )
        ),
        cases=cases.dcl_cases("Y_b", "W", "b", "grad_P", eta=True),
        inputs="`Y_b` n_b×d, `W` n_b×K, `b` K, `grad_P` d×K (`∇_P L` at `P(W, b)`), `eta`",
        outputs="`W` n_b×K, `b` K after one step on `(W, b)`",
    ),
    # the layer (reference.model, reference.backward) -----------------------------------------------
    Operation(
        name="layer_forward",
        group="layer",
        reference=layer_forward,
        call=lambda f, c: _named(f(*_layer_inputs(c))),
        cases=cases.layer_cases,
        inputs="`cfg.*`, `params.*`, `x` B×T×d_in, `labels` B",
        outputs=(
            "`X`, `U`, `Y`, `Z` B×T×d; `D`, `Q` n×K (row `b·T + t`); `logits` B×n_classes; "
            + ", ".join(f"`{k}`" for k in FORWARD_SCALARS)
            + " ()"
        ),
    ),
    Operation(
        name="layer_gradients",
        group="layer",
        reference=layer_gradients,
        call=lambda f, c: _named(f(*_layer_inputs(c))),
        cases=cases.layer_cases,
        inputs="as `layer_forward`",
        outputs="one array per flat parameter name, its shape",
    ),
    # growth (reference.growth_statistics, reference.incrt) ---------------------------------------
    Operation(
        name="growth_statistics",
        group="growth",
        reference=growth_statistics,
        call=lambda f, c: _named(
            f(cases.decode_params("params", c.inputs, c.scalars), c.array("probe_x"), c.array("Q_cap"))
        ),
        cases=cases.growth_statistics_cases,
        inputs="`params.*`, `probe_x`, `Q_cap` d×m",
        outputs="`C` d×d, `M_a` k×d×d, `A_res` d×d, `spectrum` d (non-increasing), `G_h` k",
    ),
    Operation(
        name="static_growth",
        group="growth",
        reference=static_growth,
        call=lambda f, c: _static_capture(f(c.array("A"), float(c.scalar("theta"))), c.array("A").shape[0]),
        cases=cases.static_growth_cases,
        inputs="`A` d×d symmetric, `theta`",
        outputs="`Q_cap` d×m (birth order), `lam_births` m",
        compare=STATIC_CAPTURE,
    ),
    Operation(
        name="tracked_growth",
        group="growth",
        reference=tracked_growth,
        call=lambda f, c: _static_capture(
            f(
                c.array("A"),
                float(c.scalar("theta")),
                c.array("starts"),
                int(c.scalar("n_steps")),
                float(c.scalar("eta")),
            ),
            c.array("A").shape[0],
        ),
        cases=cases.tracked_growth_cases,
        inputs="`A` d×d symmetric, `theta`, `starts` (d+1)×d, `n_steps`, `eta`",
        outputs="`Q_cap` d×m (birth order), `lam_births` m (the trackers' Rayleigh quotients)",
    ),
    Operation(
        name="oja_track",
        group="growth",
        reference=oja_track,
        call=lambda f, c: dict(
            zip(
                ("w", "estimate"),
                map(_f64, f(c.array("A"), c.array("w0"), float(c.scalar("eta")), int(c.scalar("n_steps")))),
                strict=True,
            )
        ),
        cases=cases.tracker_cases,
        inputs="`A` d×d symmetric, `w0` d, `eta`, `n_steps`",
        outputs="`w` d, `estimate` () (its Rayleigh quotient)",
    ),
    Operation(
        name="mca_exin_track",
        group="growth",
        reference=mca_exin_track,
        call=lambda f, c: dict(
            zip(
                ("w", "alphas", "estimate"),
                map(_f64, f(c.array("A"), c.array("w0"), float(c.scalar("eta")), int(c.scalar("n_steps")))),
                strict=True,
            )
        ),
        cases=cases.tracker_cases,
        inputs="`A` d×d symmetric, `w0` d, `eta`, `n_steps`",
        outputs="`w` d, `alphas` n_steps (effective steps `η/‖w_t‖²`), `estimate` ()",
    ),
    Operation(
        name="grow_decision",
        group="growth",
        reference=grow_decision,
        call=lambda f, c: cases.encode_growth_state(
            "state",
            f(
                cases.decode_growth_state("state", c.inputs),
                cases.decode_growth_config(c.scalars),
                float(c.array("lam_max")),
                c.array("u_plus"),
                int(c.scalar("step")),
                int(c.scalar("new_head_id")),
            ),
        ),
        cases=cases.grow_decision_cases,
        inputs=f"{_STATE}, `lam_max` (), `u_plus` d, `step`, `new_head_id`",
        outputs="`state.*` after the check",
    ),
    Operation(
        name="prune_decision",
        group="growth",
        reference=prune_decision,
        call=lambda f, c: cases.encode_growth_state("state", f(*_prune_inputs(c))),
        cases=cases.prune_decision_cases,
        inputs=f"{_STATE}, `C`, `M_a.{{id}}` d×d per active head, `step`",
        outputs="`state.*`",
    ),
    Operation(
        name="prototype_prune_decision",
        group="growth",
        reference=prototype_prune_decision,
        call=lambda f, c: cases.encode_growth_state(
            "state",
            f(
                cases.decode_growth_state("state", c.inputs),
                cases.decode_growth_config(c.scalars),
                c.array("mass"),
                int(c.scalar("step")),
            ),
        ),
        cases=cases.prototype_prune_cases,
        inputs=f"{_STATE}, `mass` K (in `state.prototypes` order), `step`",
        outputs="`state.*`",
    ),
    # training (training.trainer) ---------------------------------------------------------------
    Operation(
        name="train_step",
        group="training",
        reference=train_step,
        call=lambda f, c: _train_step_outputs(
            f(
                cases.decode_layer_config(c.scalars),
                cases.decode_params("params", c.inputs, c.scalars),
                cases.decode_adam(c.inputs),
                c.array("x"),
                np.array(c.array("labels"), dtype=np.int64),
                cases.decode_lr(c.scalars),
            )
        ),
        cases=cases.train_step_cases,
        inputs="`cfg.*`, `params.*`, `adam.*`, `x`, `labels`, `lr.*`",
        outputs="`params.*`, `adam.*` after one Adam step",
    ),
    Operation(
        name="trajectory",
        group="training",
        reference=trajectory,
        call=lambda f, c: cases.encode_trajectory_outputs(f(cases.decode_trajectory(c))),
        cases=cases.trajectory_cases,
        inputs="see below",
        outputs="`losses` S×3, `events` E×4, `final.*`, `checks.*` (per-check statistics)",
        compare=TRAJECTORY,
        extras=_trajectory_extras,
    ),
)


REGISTRY: tuple[Operation[Any], ...] = _RECORDS

# ==================================================================================================
# What the consumers read
# ==================================================================================================


def operation(name: str) -> Operation[Any]:
    """The record of the operation ``name``."""
    for op in REGISTRY:
        if op.name == name:
            return op
    raise KeyError(f"no conformance operation {name!r}; known: {list(operation_names())}")


def operation_names() -> tuple[str, ...]:
    """Every operation's name, in registry (and report) order."""
    return tuple(op.name for op in REGISTRY)


def groups() -> dict[Group, tuple[str, ...]]:
    """The operations of each group, in :data:`GROUP_ORDER`."""
    return {g: tuple(op.name for op in REGISTRY if op.group == g) for g in GROUP_ORDER}


def all_cases() -> list[Case]:
    """Every case of the kit, operation by operation."""
    return [case for op in REGISTRY for case in op.cases(op.name)]


class PortExited(RuntimeError):
    """The port's code raised a ``BaseException`` that is not an ``Exception`` (``SystemExit`` from
    ``sys.exit()``, ``GeneratorExit``, …) where the kit called it: the port failed, the kit's process
    goes on (its report written, its exit code its own). ``__cause__`` is what the port raised; a
    ``KeyboardInterrupt`` (the user's Ctrl-C) is never turned into one."""


@contextlib.contextmanager
def port_code() -> Iterator[None]:
    """Around every call of a port's code (its methods, its attributes): what it raises that is not an
    ``Exception`` becomes a :class:`PortExited`, so a port that calls ``sys.exit(0)`` fails its check
    instead of ending the run as if everything had passed."""
    try:
        yield
    except (Exception, KeyboardInterrupt):
        raise
    except BaseException as exc:
        raise PortExited(
            f"the port's code raised {_raised(exc)}; a port must return or raise an exception, never exit"
        ) from exc


def call_port(port: object, case: Case) -> Arrays:
    """``port``'s method for ``case.operation`` called on the case's decoded inputs; its result encoded
    (:func:`port_code`: a port that exits raises :class:`PortExited`)."""
    op = operation(case.operation)
    with port_code():
        return op.call(getattr(port, op.name), case)


def reference_outputs(case: Case) -> Arrays:
    """The reference's outputs on ``case`` (the golden vectors), with the operation's ``extras``."""
    op = operation(case.operation)
    out = op.call(op.reference, case)
    if op.extras is not None:
        out.update(op.extras(case))
    return out


def compare_case(
    case: Case, actual: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], policy: TolerancePolicy
) -> CheckResult:
    """The check ``case.check``: a port's ``actual`` outputs against the reference's ``expected``, by the
    comparator of the case's operation."""
    return compare_outputs(case, actual, expected, policy, operation(case.operation).compare)


def porting_table() -> str:
    """docs/porting.md's table of operations, from the registry."""
    rows = ["| group | operation | inputs | outputs | compared |", "|---|---|---|---|---|"]
    last: str | None = None
    for op in REGISTRY:
        group = op.group if op.group != last else ""
        last = op.group
        rows.append(f"| {group} | `{op.name}` | {op.inputs} | {op.outputs} | {op.compare.holds} |")
    return "\n".join(rows) + "\n"


# ==================================================================================================
# Loading a port
# ==================================================================================================


_MISSING = object()


def _attribute(adapter: object, attr: str) -> object:
    """The adapter's attribute ``attr`` (``_MISSING`` when it has none); a ``ValueError`` naming it,
    chained to what the port's code raised (an exit too), when reading it raises."""
    try:
        with port_code():
            return getattr(adapter, attr, _MISSING)
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc, PortExited) and exc.__cause__ is not None else exc
        raise ValueError(f"adapter.{attr}: reading it raised {_raised(cause)}") from cause


def check_adapter(adapter: object) -> Adapter:
    """Raise unless ``adapter`` has a ``name`` (a str), known ``capabilities`` (a collection of operation
    names, e.g. a frozenset, not a str) and a method for each. An attribute whose reading raises is a
    ``ValueError`` naming it, chained to what was raised."""
    name, capabilities = _attribute(adapter, "name"), _attribute(adapter, "capabilities")
    if name is _MISSING or capabilities is _MISSING:
        raise TypeError(f"adapter: expected an object with `name` and `capabilities`, got {type(adapter).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"adapter.name: expected a str (the port's name in the report), got {type(name).__name__}")
    if isinstance(capabilities, (str, bytes)) or not isinstance(capabilities, Collection):
        raise TypeError(
            f"adapter.capabilities: expected a collection of operation names (a frozenset of str), "
            f"got {type(capabilities).__name__} {capabilities!r:.80}"
        )
    caps = list(capabilities)
    bad = [c for c in caps if not isinstance(c, str)]
    if bad:
        raise TypeError(f"adapter.capabilities: expected operation names (str), got {bad!r:.200}")
    names = operation_names()
    unknown = sorted(set(caps) - set(names))
    if unknown:
        raise ValueError(f"adapter.capabilities: unknown operations {unknown}; known: {list(names)}")
    missing = sorted(op for op in set(caps) if not callable(_attribute(adapter, op)))
    if missing:
        raise ValueError(f"adapter.capabilities: declares {missing} but has no such methods")
    return cast(Adapter, adapter)


class AdapterLoadError(ValueError):
    """A ``package.module:factory`` that gives no adapter: the spec is malformed, the module cannot be
    found or raised while it was imported, the factory is missing or raised, or what it returned is
    not an adapter. The message names the spec and, for an exception of the port's code, where it was
    raised; ``__cause__`` is that exception (the command line prints its traceback on stderr)."""


@contextlib.contextmanager
def _cwd_on_path() -> Iterator[str]:
    """The current working directory at the front of ``sys.path`` while an adapter is imported (as
    ``python -m`` puts it there), so that ``--adapter my_port:factory`` finds ``./my_port.py``; taken
    out again afterwards."""
    cwd = os.getcwd()
    sys.path.insert(0, cwd)
    importlib.invalidate_caches()  # a module written since the last import of this process is seen
    try:
        yield cwd
    finally:
        if sys.path and sys.path[0] is cwd:
            del sys.path[0]
        else:  # the imported code changed sys.path: take out our entry, wherever it went
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def _raised(exc: BaseException) -> str:
    """What the port's code raised and where: ``Type: message (file, line N)`` (a syntax error's own
    position, else the innermost frame outside the import machinery)."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{type(exc).__name__}: {exc.msg} ({exc.filename}, line {exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    where = f"{frames[-1].filename}, line {frames[-1].lineno}" if frames else "no traceback"
    return f"{type(exc).__name__}: {exc} ({where})"


def _missing_module(exc: ImportError, module_name: str) -> bool:
    """Whether ``exc`` says the adapter's module itself (or a package above it) does not exist, rather
    than that the module exists and one of its own imports failed."""
    name = getattr(exc, "name", None)
    return isinstance(exc, ModuleNotFoundError) and name is not None and (module_name + ".").startswith(name + ".")


def load_adapter(spec: str) -> Adapter:
    """``package.module:factory`` → ``factory()``, checked to be an :class:`Adapter` whose capabilities
    are known operation names.

    The module is imported with the current working directory at the front of ``sys.path`` (as
    ``python -m`` does), so a module in the folder the command runs in is found without installing
    it. Every failure is an :class:`AdapterLoadError` naming ``spec``."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise AdapterLoadError(f"adapter: expected 'package.module:factory', got {spec!r}")
    module_name, factory_name = spec.split(":")
    with _cwd_on_path() as cwd:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if _missing_module(exc, module_name):
                raise AdapterLoadError(
                    f"adapter {spec!r}: cannot import {module_name!r}: {exc} (looked in the current directory "
                    f"{cwd} and on sys.path; run from the folder that holds it, or install its package)"
                ) from None
            raise AdapterLoadError(
                f"adapter {spec!r}: cannot import {module_name!r}: importing it raised {_raised(exc)}"
            ) from exc
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the port's module raised while it was imported (a SyntaxError, a SystemExit)
            raise AdapterLoadError(
                f"adapter {spec!r}: cannot import {module_name!r}: importing it raised {_raised(exc)}"
            ) from exc
        factory = getattr(module, factory_name, None)
        if factory is None or not callable(factory):
            where = getattr(module, "__file__", None) or module_name
            raise AdapterLoadError(f"adapter {spec!r}: {module_name!r} ({where}) has no callable {factory_name!r}")
        try:
            adapter = factory()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a SystemExit too: the port failed to load, the kit goes on
            raise AdapterLoadError(f"adapter {spec!r}: {factory_name}() raised {_raised(exc)}") from exc
    try:
        return check_adapter(adapter)
    except (TypeError, ValueError) as exc:  # chained to what the port's code raised, if it raised
        raise AdapterLoadError(f"adapter {spec!r}: {str(exc).removeprefix('adapter: ')}") from exc.__cause__


__all__ = [
    "GROUP_ORDER",
    "REGISTRY",
    "AdapterLoadError",
    "Group",
    "Operation",
    "PortExited",
    "all_cases",
    "call_port",
    "check_adapter",
    "compare_case",
    "groups",
    "grow_decision",
    "growth_statistics",
    "layer_forward",
    "layer_gradients",
    "load_adapter",
    "mca_exin_track",
    "oja_track",
    "operation",
    "operation_names",
    "port_code",
    "porting_table",
    "prototype_prune_decision",
    "prune_decision",
    "reference_outputs",
    "static_growth",
    "tracked_growth",
    "train_step",
    "trajectory",
]
