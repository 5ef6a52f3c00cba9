"""The kit's cases, and the one encoding of every operation's inputs and outputs as named arrays.

A :class:`Case` is plain data: a check name ``operation/case``, JSON scalars and named arrays. The
same encoding is what the language-neutral mode writes to disk (docs/porting.md), and what a Python
adapter's results are turned into before comparison, so both kinds of port are compared by the same
code. Each operation's record in :mod:`ddcl_incrt.conformance.operations` names its case generator
(below, each takes the operation's name) and decodes a case into the arguments of its call.

Encodings (``p`` a prefix such as ``params``):

* parameters: arrays ``p.W_in``, ``p.E_pos``, ``p.heads.{id}.{W_Q,W_K,W_V,W_O,s}`` (``s`` 0-d),
  ``p.P``, ``p.W_c``, ``p.b_c``; scalars ``p.next_head_id`` (int), ``p.prototype_ids`` (list of int);
* layer config: scalars ``cfg.{d_in,d,d_k,d_v,seq_len,K_max,n_classes,T_P,lambda_q,s_init}``;
* growth config: scalars ``config.{theta,phi_g,T_d,T_prune,eps_K,min_heads,min_prototypes}``;
* growth state: arrays ``p.Q_cap`` (d×m), ``p.heads`` (k×3 int64 rows ``head_id, birth_step,
  below_count``), ``p.prototypes`` (K×2 int64 rows ``prototype_id, low_mass_count``), ``p.last_growth_step``
  (0-d int64);
* Adam state: arrays ``adam.{name}.m``, ``adam.{name}.v``, ``adam.{name}.t`` (0-d int64) per flat name;
* learning rates: scalars ``lr.{rest,prototypes,temperatures}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, cast

import numpy as np

from ddcl_incrt.conformance.adapter import CheckStatistics, TrajectoryInputs, TrajectoryOutputs
from ddcl_incrt.conformance.trajectory import run_trajectory
from reference.growth_phases import birth_rng
from reference.incrt.controller import GrowthConfig, GrowthState, HeadRecord, PrototypeRecord
from reference.incrt.operators import spectral_operator
from reference.model import LayerConfig, ModelParams, init_head, init_params
from reference.optim import AdamMoments, AdamState, LearningRates
from reference.surgery import HEAD_PARAM_NAMES, add_head, flatten, params_from_arrays, remove_head
from reference.surgery import remove_prototype_column as remove_prototype_col
from training.data import planted_offsets
from training.trainer import ReferenceEngine

Scalar: TypeAlias = float | int | str | bool | list[int]
Arrays: TypeAlias = dict[str, np.ndarray]

FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class Case:
    """One check's inputs: ``check`` is ``operation/case`` (unique), ``note`` says what it exercises."""

    check: str
    operation: str
    scalars: Mapping[str, Scalar]
    inputs: Mapping[str, np.ndarray]
    note: str = ""

    def __post_init__(self) -> None:
        if not self.check.startswith(self.operation + "/"):
            raise ValueError(f"check: {self.check!r} must start with its operation {self.operation!r} + '/'")

    def scalar(self, name: str) -> Any:
        if name not in self.scalars:
            raise KeyError(f"case {self.check}: scalar {name!r} is missing")
        return self.scalars[name]

    def array(self, name: str) -> np.ndarray:
        if name not in self.inputs:
            raise KeyError(f"case {self.check}: input array {name!r} is missing")
        return self.inputs[name]


# ==================================================================================================
# Encodings
# ==================================================================================================

_CFG_FIELDS = ("d_in", "d", "d_k", "d_v", "seq_len", "K_max", "n_classes", "T_P", "lambda_q", "s_init")
_GROWTH_FIELDS = ("theta", "phi_g", "T_d", "T_prune", "eps_K", "min_heads", "min_prototypes")


def encode_params(prefix: str, params: ModelParams) -> tuple[Arrays, dict[str, Scalar]]:
    arrays = {f"{prefix}.{k}": np.array(v, dtype=np.float64) for k, v in flatten(params).items()}
    scalars: dict[str, Scalar] = {
        f"{prefix}.next_head_id": params.next_head_id,
        f"{prefix}.prototype_ids": list(params.prototype_ids),
    }
    return arrays, scalars


def decode_params(prefix: str, arrays: Mapping[str, np.ndarray], scalars: Mapping[str, Scalar]) -> ModelParams:
    flat = {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + ".")}
    ids = scalars[f"{prefix}.prototype_ids"]
    if not isinstance(ids, list):
        raise TypeError(f"{prefix}.prototype_ids: expected a list of ints, got {type(ids).__name__}")
    return params_from_arrays(
        flat, next_head_id=int(cast(int, scalars[f"{prefix}.next_head_id"])), prototype_ids=tuple(int(i) for i in ids)
    )


def encode_layer_config(cfg: LayerConfig) -> dict[str, Scalar]:
    return {f"cfg.{f}": getattr(cfg, f) for f in _CFG_FIELDS}


def decode_layer_config(scalars: Mapping[str, Scalar]) -> LayerConfig:
    return LayerConfig(**{f: scalars[f"cfg.{f}"] for f in _CFG_FIELDS})  # type: ignore[arg-type]


def encode_growth_config(cfg: GrowthConfig) -> dict[str, Scalar]:
    return {f"config.{f}": getattr(cfg, f) for f in _GROWTH_FIELDS}


def decode_growth_config(scalars: Mapping[str, Scalar]) -> GrowthConfig:
    return GrowthConfig(**{f: scalars[f"config.{f}"] for f in _GROWTH_FIELDS})  # type: ignore[arg-type]


def encode_growth_state(prefix: str, state: GrowthState) -> Arrays:
    heads = np.array([[h.head_id, h.birth_step, h.below_count] for h in state.heads], dtype=np.int64).reshape(-1, 3)
    protos = np.array([[p.prototype_id, p.low_mass_count] for p in state.prototypes], dtype=np.int64).reshape(-1, 2)
    return {
        f"{prefix}.Q_cap": np.array(state.Q_cap, dtype=np.float64),
        f"{prefix}.heads": heads,
        f"{prefix}.prototypes": protos,
        f"{prefix}.last_growth_step": np.array(state.last_growth_step, dtype=np.int64),
    }


def decode_growth_state(prefix: str, arrays: Mapping[str, np.ndarray]) -> GrowthState:
    heads = tuple(HeadRecord(int(a), int(b), int(c)) for a, b, c in arrays[f"{prefix}.heads"].tolist())
    protos = tuple(PrototypeRecord(int(a), int(b)) for a, b in arrays[f"{prefix}.prototypes"].tolist())
    return GrowthState(
        Q_cap=np.array(arrays[f"{prefix}.Q_cap"], dtype=np.float64),
        last_growth_step=int(arrays[f"{prefix}.last_growth_step"]),
        heads=heads,
        prototypes=protos,
    )


def encode_adam(state: AdamState) -> Arrays:
    out: Arrays = {}
    for name, mom in state.moments.items():
        out[f"adam.{name}.m"] = np.array(mom.m, dtype=np.float64)
        out[f"adam.{name}.v"] = np.array(mom.v, dtype=np.float64)
        out[f"adam.{name}.t"] = np.array(mom.t, dtype=np.int64)
    return out


def decode_adam(arrays: Mapping[str, np.ndarray]) -> AdamState:
    names = sorted({k[len("adam.") : -len(".m")] for k in arrays if k.startswith("adam.") and k.endswith(".m")})
    return AdamState(
        moments={
            n: AdamMoments(
                m=np.array(arrays[f"adam.{n}.m"], dtype=np.float64),
                v=np.array(arrays[f"adam.{n}.v"], dtype=np.float64),
                t=int(arrays[f"adam.{n}.t"]),
            )
            for n in names
        }
    )


def encode_lr(lr: LearningRates) -> dict[str, Scalar]:
    return {"lr.rest": lr.rest, "lr.prototypes": lr.prototypes, "lr.temperatures": lr.temperatures}


def decode_lr(scalars: Mapping[str, Scalar]) -> LearningRates:
    return LearningRates(
        rest=float(cast(float, scalars["lr.rest"])),
        prototypes=float(cast(float, scalars["lr.prototypes"])),
        temperatures=float(cast(float, scalars["lr.temperatures"])),
    )


def _f64(value: object) -> np.ndarray:
    return np.array(value, dtype=np.float64)


def _fl(case: Case, name: str) -> float:
    return float(case.scalar(name))


def _int(case: Case, name: str) -> int:
    return int(case.scalar(name))


def decode_trajectory(c: Case) -> TrajectoryInputs:
    births: dict[int, dict[str, np.ndarray]] = {}
    for k, v in c.inputs.items():
        if k.startswith("births."):
            _, hid, field = k.split(".")
            births.setdefault(int(hid), {})[field] = v
    return TrajectoryInputs(
        layer_cfg=decode_layer_config(c.scalars),
        growth_cfg=decode_growth_config(c.scalars),
        check_every=_int(c, "check_every"),
        lr=decode_lr(c.scalars),
        seed=_int(c, "seed"),
        params=decode_params("params", c.inputs, c.scalars),
        batches_x=c.array("batches_x"),
        batches_labels=np.array(c.array("batches_labels"), dtype=np.int64),
        probe_x=c.array("probe_x"),
        probe_labels=np.array(c.array("probe_labels"), dtype=np.int64),
        births=births,
    )


# a trajectory's per-check statistics (TrajectoryOutputs.checks), encoded
TRAJECTORY_CHECK_FIELDS: tuple[str, ...] = (
    "checks.step",
    "checks.lam_max",
    "checks.heads",
    "checks.G_h",
    "checks.projector",
)


def encode_check_statistics(checks: Sequence[CheckStatistics], d: int) -> Arrays:
    """``checks.step`` N (int64), ``checks.lam_max`` N, ``checks.heads`` H×2 int64 rows ``(step, head_id)``
    (every head active at each check's start, by id), ``checks.G_h`` H (aligned with ``checks.heads``)
    and ``checks.projector`` N×d×d, ``Q_cap Q_capᵀ`` after each check (sign-free)."""
    heads = [(c.step, h) for c in checks for h in sorted(c.head_strength)]
    projectors = []
    for c in checks:
        Q = _f64(c.Q_cap).reshape(d, -1)
        projectors.append(Q @ Q.T)
    return {
        "checks.step": np.array([c.step for c in checks], dtype=np.int64),
        "checks.lam_max": np.array([c.lam_max for c in checks], dtype=np.float64),
        "checks.heads": np.array(heads, dtype=np.int64).reshape(-1, 2),
        "checks.G_h": np.array([c.head_strength[h] for c in checks for h in sorted(c.head_strength)], dtype=np.float64),
        "checks.projector": np.array(projectors, dtype=np.float64).reshape(-1, d, d),
    }


def encode_trajectory_outputs(out: TrajectoryOutputs) -> Arrays:
    arrays, scalars = encode_params("final", out.final_params)
    arrays["final.prototype_ids"] = np.array(scalars["final.prototype_ids"], dtype=np.int64)
    arrays["final.head_ids"] = np.array(sorted(out.final_params.heads), dtype=np.int64)
    stats = encode_check_statistics(out.checks, out.final_params.P.shape[0])
    return {
        "losses": _f64(out.losses),
        "events": np.array(out.events, dtype=np.int64).reshape(-1, 4),
        **arrays,
        **stats,
    }


# ==================================================================================================
# The cases
# ==================================================================================================


def _stochastic(rng: np.random.Generator, n: int, K: int) -> np.ndarray:
    """A row-stochastic n×K matrix that is not a softmax of anything in the case (D1 holds for any Q)."""
    return np.array(rng.dirichlet(np.ones(K), size=n), dtype=np.float64)


_PRIMITIVE_SETTINGS: tuple[tuple[str, int, int, int, float, str], ...] = (
    # name, n, d, K, T_P, note
    ("basic", 7, 3, 4, 1.0, "unit temperature, soft assignments"),
    ("cold", 6, 3, 3, 0.25, "low temperature: nearly hard assignments"),
    ("hot", 5, 2, 4, 4.0, "high temperature: nearly uniform assignments"),
    ("single_prototype", 5, 3, 1, 1.0, "K = 1: every assignment is 1"),
    (
        "frozen",
        6,
        3,
        3,
        2.0**-13,
        "T_P = 2^-13 and every D_tj/T_P > 745: exp(−D/T_P) underflows to 0 in float64 in every entry, so "
        "only the row-shifted softmax / log-sum-exp (SPEC §2) is finite; row 0 is the midpoint of p_0 "
        "and p_1 (q = ½, ½, 0)",
    ),
)

# the frozen setting: tokens moved 2 away from the prototypes in every coordinate, token 0 at a midpoint
_FROZEN_SHIFT = 2.0
# settings that pin something only an operation taking T_P can get wrong
_TEMPERATURE_ONLY = frozenset({"frozen"})


def _primitive_setting(i: int) -> tuple[dict[str, np.ndarray], float]:
    """Setting ``i``'s DDCL arrays ``Y``, ``P``, ``Q`` (row-stochastic, not a softmax of anything in the
    case: D1 holds for any ``Q``) and ``D``, and its temperature ``T_P``."""
    from reference import ddcl

    _, n, d, K, T_P, _ = _PRIMITIVE_SETTINGS[i]
    rng = np.random.default_rng([9, i])
    Y = np.array(rng.standard_normal((n, d)), dtype=np.float64)
    P = np.array(rng.standard_normal((d, K)), dtype=np.float64)
    Q = _stochastic(rng, n, K)
    if _PRIMITIVE_SETTINGS[i][0] == "frozen":
        Y = Y + _FROZEN_SHIFT
        Y[0] = 0.5 * (P[:, 0] + P[:, 1])
    return {"Y": Y, "P": P, "Q": Q, "D": ddcl.squared_distances(Y, P)}, T_P


def primitive_cases(
    *arrays: str, temperature: bool = False, extra: Mapping[str, float] | None = None
) -> Callable[[str], list[Case]]:
    """The case generator of a DDCL primitive taking the named ``arrays`` (and the scalar ``T_P`` with
    ``temperature``, and the scalars ``extra``), on each of the settings of (n, d, K, T_P): the four of
    every primitive, and for one taking ``T_P`` the frozen one."""

    def cases(operation: str) -> list[Case]:
        out: list[Case] = []
        for i, (name, *_, note) in enumerate(_PRIMITIVE_SETTINGS):
            if name in _TEMPERATURE_ONLY and not temperature:
                continue
            values, T_P = _primitive_setting(i)
            scalars: dict[str, Scalar] = {"T_P": T_P} if temperature else {}
            scalars.update(extra or {})
            out.append(Case(f"{operation}/{name}", operation, scalars, {k: values[k] for k in arrays}, note))
        return out

    return cases


# name, n_b, d, K, note (the dual competitive layer, SPEC §2's DCL: P = Y_bᵀW + 1bᵀ)
_DCL_SETTINGS: tuple[tuple[str, int, int, int, str], ...] = (
    ("basic", 5, 3, 4, "n_b = 5 basis tokens, d = 3, K = 4"),
    ("few_tokens", 2, 4, 3, "n_b = 2 < d = 4: Y_bᵀY_b is singular, the +11ᵀ term does not make it full rank"),
    ("single_prototype", 4, 3, 1, "K = 1"),
)
DCL_ETA = 0.1


def dcl_cases(*arrays: str, eta: bool = False) -> Callable[[str], list[Case]]:
    """The case generator of a DCL operation taking the named arrays of ``Y_b`` (n_b×d), ``W`` (n_b×K),
    ``b`` (K), ``grad_P`` (d×K) (and the step ``eta`` = :data:`DCL_ETA`), on :data:`_DCL_SETTINGS`."""

    def cases(operation: str) -> list[Case]:
        out: list[Case] = []
        for i, (name, n_b, d, K, note) in enumerate(_DCL_SETTINGS):
            rng = np.random.default_rng([11, i])
            values = {
                "Y_b": rng.standard_normal((n_b, d)),
                "W": rng.standard_normal((n_b, K)),
                "b": rng.standard_normal(K),
                "grad_P": rng.standard_normal((d, K)),
            }
            scalars: dict[str, Scalar] = {"eta": DCL_ETA} if eta else {}
            out.append(Case(f"{operation}/{name}", operation, scalars, {k: values[k] for k in arrays}, note))
        return out

    return cases


# name, eigenvalues, n_steps, step as a fraction of the tracker's step limit, note
_TRACKER_SETTINGS: tuple[tuple[str, tuple[float, ...], int, float, str], ...] = (
    ("basic", (3.0, 1.0, 0.5, -1.0), 40, 0.5, "clear gaps at both ends, 40 steps (not converged)"),
    ("converged", (2.0, 1.5, 0.0, -0.5, -2.0), 400, 0.5, "d = 5, 400 steps"),
    ("no_steps", (1.0, 0.0, -1.0), 0, 0.5, "zero steps: w is w0 normalised (Oja) or w0 itself (MCA-EXIN)"),
)


def tracker_cases(operation: str) -> list[Case]:
    """A tracker (``oja_track``, ``mca_exin_track``) on planted symmetric operators from a random start
    ``w0`` (not unit: a port must normalise where the rule does), step ``eta`` a fraction of its limit."""
    from reference.incrt.trackers import mca_exin_step_limit, oja_step_limit

    out: list[Case] = []
    for i, (name, lam, n_steps, frac, note) in enumerate(_TRACKER_SETTINGS):
        rng = np.random.default_rng([12, i])
        A = spectral_operator(_orthonormal(rng, len(lam), len(lam)), np.array(lam))
        w0 = 2.0 * rng.standard_normal(len(lam))
        limit = oja_step_limit(A) if operation == "oja_track" else mca_exin_step_limit(A, w0)
        scalars: dict[str, Scalar] = {"eta": frac * limit, "n_steps": n_steps}
        out.append(Case(f"{operation}/{name}", operation, scalars, {"A": A, "w0": w0}, note))
    return out


# name, eigenvalues, theta, note (tracked greedy capture, claim G4)
_TRACKED_SETTINGS: tuple[tuple[str, tuple[float, ...], float, str], ...] = (
    ("clear_gaps", (3.0, 2.0, 0.5, -1.0), 1.0, "two eigenvalues above θ = 1, each simple, gaps ≥ 0.5"),
    ("one_direction", (2.0, 0.6, 0.2, -0.5, -1.5), 1.0, "d = 5, one eigenvalue above θ"),
    ("nothing_above", (0.5, 0.2, -1.0), 1.0, "no eigenvalue above θ: the first round stops"),
)
TRACKED_STEPS = 1500


def tracked_growth_cases(operation: str) -> list[Case]:
    """Greedy capture with an Oja tracker per round (:func:`reference.incrt.capture.greedy_capture_tracked`)
    on planted operators: ``starts`` (d+1)×d holds each round's random start (projected by the port onto
    the complement of the captured directions), ``n_steps`` = :data:`TRACKED_STEPS`, ``eta`` the
    certified step ``1/‖A‖_F``."""
    from reference.incrt.trackers import certified_step

    out: list[Case] = []
    for i, (name, lam, theta, note) in enumerate(_TRACKED_SETTINGS):
        rng = np.random.default_rng([13, i])
        d = len(lam)
        A = spectral_operator(_orthonormal(rng, d, d), np.array(lam))
        starts = rng.standard_normal((d + 1, d))
        scalars: dict[str, Scalar] = {"theta": theta, "n_steps": TRACKED_STEPS, "eta": certified_step(A)}
        out.append(Case(f"{operation}/{name}", operation, scalars, {"A": A, "starts": starts}, note))
    return out


SMALL_LAYER = LayerConfig(d_in=3, d=4, d_k=2, d_v=2, seq_len=3, K_max=3, n_classes=2, T_P=1.0, lambda_q=0.5)

# name, head events ("add" or ("remove", id)), prototype ids removed, seed, note
_LAYER_SETTINGS: tuple[tuple[str, tuple[object, ...], tuple[int, ...], int, str], ...] = (
    ("one_head", (), (), 1, "the initial layer: one head, K_max prototypes"),
    ("three_heads", ("add", "add"), (), 2, "three heads (ids 0, 1, 2)"),
    ("single_prototype", ("add",), (0, 2), 3, "K = 1 after two prototype prunes"),
    ("after_head_removal", ("add", "add", ("remove", 0)), (1,), 4, "heads 1, 2 after head 0 was pruned; K = 2"),
    (
        "square_d_K",
        ("add",),
        (),
        5,
        "d = K = 4, two heads: P is square, so a port that reads P transposed (K×d for d×K) gets no shape "
        "error and must fail on the values",
    ),
)

# settings whose layer differs from SMALL_LAYER
_LAYER_CONFIGS: dict[str, LayerConfig] = {"square_d_K": replace(SMALL_LAYER, K_max=SMALL_LAYER.d)}


def layer_setting(index: int) -> tuple[str, LayerConfig, ModelParams, np.ndarray, np.ndarray, str]:
    """``(name, cfg, params, x, labels, note)`` of one layer setting; head ``s`` values are spread
    over ``[−0.5, 0.5]`` so that per-head temperatures differ."""
    name, events, removed, seed, note = _LAYER_SETTINGS[index]
    cfg = _LAYER_CONFIGS.get(name, SMALL_LAYER)
    rng = np.random.default_rng([11, seed])
    params = init_params(cfg, rng=rng)
    for ev in events:
        if ev == "add":
            params, _ = add_head(params, cfg, rng=rng)
        else:
            params = remove_head(params, cast(tuple[str, int], ev)[1])
    for pid in removed:
        params = remove_prototype_col(params, pid)
    flat = dict(flatten(params))
    hids = sorted(params.heads)
    for i, hid in enumerate(hids):
        flat[f"heads.{hid}.s"] = np.array(-0.5 + i / max(len(hids) - 1, 1), dtype=np.float64)
    params = params_from_arrays(flat, next_head_id=params.next_head_id, prototype_ids=params.prototype_ids)
    x = np.array(rng.standard_normal((2, cfg.seq_len, cfg.d_in)), dtype=np.float64)
    labels = np.array(rng.integers(0, cfg.n_classes, size=2), dtype=np.int64)
    return name, cfg, params, x, labels, note


def layer_cases(operation: str) -> list[Case]:
    """The layer at 1 and 3 heads, K = 1, after a head was removed, and with a square ``P`` (d = K)."""
    cases: list[Case] = []
    for i in range(len(_LAYER_SETTINGS)):
        name, cfg, params, x, labels, note = layer_setting(i)
        arrays, scalars = encode_params("params", params)
        scalars.update(encode_layer_config(cfg))
        cases.append(Case(f"{operation}/{name}", operation, scalars, {**arrays, "x": x, "labels": labels}, note))
    return cases


def _orthonormal(rng: np.random.Generator, d: int, m: int) -> np.ndarray:
    return np.array(np.linalg.qr(rng.standard_normal((d, d)))[0][:, :m], dtype=np.float64)


def growth_statistics_cases(operation: str) -> list[Case]:
    """``C``, ``M_a^h``, ``A_res``, spectrum, ``G_h`` with nothing captured and with two directions captured."""
    cases: list[Case] = []
    for i, m in ((0, 0), (1, 2), (3, 1)):
        name, cfg, params, x, _, note = layer_setting(i)
        arrays, scalars = encode_params("params", params)
        Q_cap = _orthonormal(np.random.default_rng([13, i]), cfg.d, m)
        cases.append(
            Case(
                f"{operation}/{name}_m{m}",
                operation,
                scalars,
                {**arrays, "probe_x": x, "Q_cap": Q_cap},
                f"{note}; {m} directions captured",
            )
        )
    return cases


# name, eigenvalues, θ, directions defined (all eigenvalues above θ simple), note
_STATIC_SETTINGS: tuple[tuple[str, tuple[float, ...], float, bool, str], ...] = (
    ("clear_gaps", (3.0, 2.0, 1.0, -0.5, -1.0), 0.5, True, "three simple eigenvalues well above θ"),
    (
        "repeated_eigenvalue",
        (2.0, 2.0, 1.0, 0.2, -1.0),
        0.5,
        False,
        "λ = 2 twice: only the count, the births and the captured span are defined",
    ),
    (
        "near_tie",
        (2.0, 1.0, 0.5 * (1.0 + 1e-13), 0.1, -1.0),
        0.5,
        True,
        "λ_3 within the DECISION tolerance of θ: the third birth is a near-tie",
    ),
    ("nothing_above", (0.4, 0.1, 0.0, -0.2, -2.0), 0.5, True, "no eigenvalue above θ: no birth"),
    ("everything_above", (4.0, 3.0, 2.0, 1.5, 1.0), 0.5, True, "every eigenvalue above θ: d births (G1's cap)"),
)


def static_growth_cases(operation: str) -> list[Case]:
    """Greedy capture on static operators ``A = V diag(λ) Vᵀ`` (random orthogonal ``V``)."""
    cases: list[Case] = []
    for i, (name, lam, theta, defined, note) in enumerate(_STATIC_SETTINGS):
        V = _orthonormal(np.random.default_rng([17, i]), len(lam), len(lam))
        A = spectral_operator(V, np.array(lam, dtype=np.float64))
        scalars: dict[str, Scalar] = {"theta": theta, "directions_defined": defined}
        cases.append(Case(f"{operation}/{name}", operation, scalars, {"A": A}, note))
    return cases


_DECISION_CONFIG = GrowthConfig(theta=0.5, phi_g=0.1, T_d=10, T_prune=2, eps_K=0.05)


def _decision_state(d: int, *, last_growth_step: int, below: int = 0, birth_1: int = 20) -> GrowthState:
    rng = np.random.default_rng(19)
    return GrowthState(
        Q_cap=_orthonormal(rng, d, 1),
        last_growth_step=last_growth_step,
        heads=(HeadRecord(0, 0, 0), HeadRecord(1, birth_1, below)),
        prototypes=tuple(PrototypeRecord(j) for j in range(3)),
    )


def grow_decision_cases(operation: str) -> list[Case]:
    """Growth given the statistic: clear, below, an exact tie ``λ_max = θ`` (strict ``>``: no growth),
    the dwell boundary ``step − last = T_d`` (grows) and one step short, and a full capture."""
    d = 4
    cfg = _DECISION_CONFIG
    theta, T_d = cfg.theta, cfg.T_d
    base = _decision_state(d, last_growth_step=20)
    full = replace(base, Q_cap=_orthonormal(np.random.default_rng(23), d, d))
    settings = (
        ("clear_growth", base, 2.0 * theta, 20 + T_d + 5, "λ_max = 2θ, dwell passed: a birth"),
        ("below_threshold", base, 0.5 * theta, 20 + T_d + 5, "λ_max = θ/2: no birth"),
        ("at_threshold_tie", base, theta, 20 + T_d + 5, "λ_max = θ exactly: SPEC §3.2's strict > means no birth"),
        ("dwell_boundary", base, 2.0 * theta, 20 + T_d, "step − last growth = T_d: the dwell has passed (≥)"),
        ("dwell_one_short", base, 2.0 * theta, 20 + T_d - 1, "step − last growth = T_d − 1: no birth yet"),
        ("full_capture", full, 2.0 * theta, 20 + T_d + 5, "m = d directions captured: nothing can be appended"),
    )
    Q = base.Q_cap
    u = np.array(np.random.default_rng(29).standard_normal(d), dtype=np.float64)
    u = u - Q @ (Q.T @ u)
    u = u / np.linalg.norm(u)
    cases: list[Case] = []
    for name, state, lam, step, note in settings:
        scalars: dict[str, Scalar] = {**encode_growth_config(cfg), "step": step, "new_head_id": 2}
        inputs = {**encode_growth_state("state", state), "lam_max": _f64(lam), "u_plus": u}
        cases.append(Case(f"{operation}/{name}", operation, scalars, inputs, note))
    return cases


def prune_decision_cases(operation: str) -> list[Case]:
    """Head pruning from ``C`` and ``M_a^h``: a weak head pruned, blocked by hysteresis, too young, and
    the patience counter counting."""
    d = 4
    rng = np.random.default_rng(31)
    G = rng.standard_normal((d, d))
    C = np.array(G @ G.T / d + 0.1 * np.eye(d), dtype=np.float64)
    C = 0.5 * (C + C.T)

    def antisym(scale: float) -> np.ndarray:
        M = rng.standard_normal((d, d))
        return np.array(scale * 0.5 * (M - M.T), dtype=np.float64)

    strong, weak = antisym(1.0), antisym(1e-3)
    cfg_loose = GrowthConfig(theta=50.0, phi_g=0.1, T_d=10, T_prune=2, eps_K=0.05)
    cfg_tight = replace(cfg_loose, theta=1e-3)
    settings = (
        ("weak_head_pruned", cfg_loose, _decision_state(d, last_growth_step=20, below=1), 40, "G_1 < φ_g for T_prune"),
        ("hysteresis_blocks", cfg_tight, _decision_state(d, last_growth_step=20, below=1), 40, "λ_max + G_h > θ"),
        ("too_young", cfg_loose, _decision_state(d, last_growth_step=35, below=1, birth_1=35), 40, "age < T_d"),
        ("patience_counts", cfg_loose, _decision_state(d, last_growth_step=20, below=0), 40, "first weak check"),
    )
    cases: list[Case] = []
    for name, cfg, state, step, note in settings:
        scalars: dict[str, Scalar] = {**encode_growth_config(cfg), "step": step}
        inputs = {**encode_growth_state("state", state), "C": C, "M_a.0": strong, "M_a.1": weak}
        cases.append(Case(f"{operation}/{name}", operation, scalars, inputs, note))
    return cases + exact_prune_cases(operation)


# Exact head-prune operators. C = diag(EXACT_C) (dyadic, PSD) and each head's M_a^h is antisymmetric with
# one dyadic pair M[i, j] = a, M[j, i] = −a on a block (i, j). Then ½(C M + (C M)ᵀ) is the pair
# ½(c_i − c_j)·a, so with Q_cap = e_4 (Π⊥ exact) A_res is block diagonal and
#   block (0, 1) (c = 1, ½):  eigenvalues ±|Σ a|/4,  G_h = |a|·√(5/4);
#   block (2, 3) (c = 1, 0):  eigenvalues ±|Σ a|/2,  G_h = |a|;
# λ_max(A_res) is the larger of the two blocks' values, every one a dyadic rational. Every decision of
# these cases is at least 1/32 from its threshold (relative margin ≥ 3 %, 10⁷ DECISION bands), so no
# CPU's rounding of eigh or of the norms can move it; the notes give each comparison by hand.
EXACT_C = (1.0, 0.5, 1.0, 0.0, 0.25)
EXACT_BLOCKS = {"strong": (0, 1), "weak": (2, 3)}
EXACT_PRUNE = GrowthConfig(theta=1.0, phi_g=0.5, T_d=10, T_prune=2, eps_K=0.05)
EXACT_STEP = 40

# name, config changes, heads (id, birth_step, below_count, block, a), rule pinned
_EXACT_PRUNE_SETTINGS: tuple[
    tuple[str, dict[str, float | int], tuple[tuple[int, int, int, str, float], ...], str], ...
] = (
    (
        "two_prunes_recomputed",
        {"theta": 0.5625},
        ((0, 0, 0, "strong", 0.5), (1, 20, 1, "weak", 0.25), (2, 20, 1, "weak", 0.3125)),
        "SPEC §3.3, A_res formed again after each removal: heads 1, 2 weak and eligible; λ_max({0,1,2}) + G_1 "
        "= 0.28125 + 0.25 ≤ θ = 0.5625 prunes head 1, then λ_max({0,2}) + G_2 = 0.15625 + 0.3125 ≤ θ prunes "
        "head 2; with head 1 still in A_res, 0.28125 + 0.3125 = 0.59375 > θ would keep head 2",
    ),
    (
        "three_prunes_recomputed",
        {"theta": 0.75},
        (
            (0, 0, 0, "strong", 0.5),
            (1, 20, 1, "weak", 0.25),
            (2, 20, 1, "weak", 0.3125),
            (3, 20, 1, "weak", 0.375),
        ),
        "SPEC §3.3, three prunes at one check, each enabled by the one before: λ_max + G_h = 0.46875 + 0.25, "
        "then 0.34375 + 0.3125, then 0.1875 + 0.375, each ≤ θ = 0.75; with the full A_res, 0.46875 + 0.3125 "
        "= 0.78125 > θ would keep heads 2 and 3",
    ),
    (
        "second_prune_blocked",
        {"theta": 0.875},
        ((0, 0, 0, "weak", 1.0), (1, 20, 1, "weak", -0.25), (2, 20, 1, "weak", 0.3125)),
        "SPEC §3.3, hysteresis after a removal: head 1 cancels part of head 0, so λ_max({0,1,2}) + G_1 = "
        "0.53125 + 0.25 ≤ θ = 0.875 prunes it and λ_max rises: λ_max({0,2}) + G_2 = 0.65625 + 0.3125 = "
        "0.96875 > θ keeps head 2 (with head 1 still in A_res, 0.84375 ≤ θ would prune it)",
    ),
    (
        "last_head_kept",
        {"theta": 0.5625},
        ((0, 0, 1, "weak", 0.25),),
        "SPEC §3.3, at least one head remains (min_heads = 1): the only head is weak, eligible and passes the "
        "hysteresis (0.125 + 0.25 ≤ θ), and is not pruned; its count advances to 2",
    ),
    (
        "min_heads_binds",
        {"min_heads": 2},
        ((0, 0, 0, "strong", 0.5), (1, 20, 1, "weak", 0.25), (2, 20, 1, "weak", 0.3125)),
        "min_heads = 2 binds between two prunes: heads 1 and 2 are eligible and both pass the hysteresis "
        "(θ = 1), head 1 (smallest G_h) is pruned and then two heads remain, so head 2 stays",
    ),
    (
        "counter_resets_on_recovery",
        {},
        ((0, 0, 0, "strong", 0.5), (1, 20, 1, "weak", 0.75)),
        "SPEC §3.3, T_prune CONSECUTIVE checks: head 1 was weak at its last check (count 1) and is strong "
        "now (G_1 = 0.75 ≥ φ_g = 0.5): its count restarts from 0, not 1",
    ),
    (
        "weak_since_birth_pruned_at_T_d",
        {},
        ((0, 0, 0, "strong", 0.5), (1, 30, 1, "weak", 0.25)),
        "the count advances while a head is younger than T_d: head 1, born at step 30 and weak at its birth "
        "check (count 1), is weak again at step 40 = 30 + T_d (count 2 = T_prune) and is pruned there, at "
        "the first check at which it is T_d old (step − birth ≥ T_d)",
    ),
    (
        "newborn_in_prune_phase",
        {"theta": 0.5},
        ((0, 0, 0, "strong", 0.5), (1, 20, 1, "weak", 0.25), (2, EXACT_STEP, 0, "weak", 0.375)),
        "the newborn takes part in the same check's prune phase: head 2 born at this step is weak, its count "
        "goes 0 → 1 (it is not pruned: age 0 < T_d), and its operator is in A_res: λ_max({0,1,2}) + G_1 = "
        "0.3125 + 0.25 > θ = 0.5 keeps head 1 (without the newborn, 0.125 + 0.25 ≤ θ would prune it)",
    ),
)


def exact_head_operators(
    heads: tuple[tuple[int, int, int, str, float], ...],
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """``C`` and every head's ``M_a^h`` of an exact prune setting (see :data:`EXACT_C`)."""
    d = len(EXACT_C)
    C = np.diag(np.array(EXACT_C, dtype=np.float64))
    Ms: dict[int, np.ndarray] = {}
    for hid, _, _, block, a in heads:
        i, j = EXACT_BLOCKS[block]
        M = np.zeros((d, d), dtype=np.float64)
        M[i, j], M[j, i] = a, -a
        Ms[hid] = M
    return C, Ms


def exact_prune_cases(operation: str) -> list[Case]:
    """Head-prune decisions on exactly constructed statistics: two and three prunes at one check with the
    hysteresis recomputed between them, a removal that raises ``λ_max``, ``min_heads``, a count that
    restarts, a head pruned the first check it is ``T_d`` old, and a newborn."""
    d = len(EXACT_C)
    Q_cap = np.zeros((d, 1), dtype=np.float64)
    Q_cap[d - 1, 0] = 1.0
    cases: list[Case] = []
    for name, changes, heads, note in _EXACT_PRUNE_SETTINGS:
        cfg = replace(EXACT_PRUNE, **changes)  # type: ignore[arg-type]
        C, Ms = exact_head_operators(heads)
        state = GrowthState(
            Q_cap=Q_cap,
            last_growth_step=max(h[1] for h in heads),
            heads=tuple(HeadRecord(hid, birth, below) for hid, birth, below, _, _ in heads),
            prototypes=tuple(PrototypeRecord(j) for j in range(3)),
        )
        scalars: dict[str, Scalar] = {**encode_growth_config(cfg), "step": EXACT_STEP}
        inputs = {**encode_growth_state("state", state), "C": C, **{f"M_a.{h}": M for h, M in Ms.items()}}
        cases.append(Case(f"{operation}/{name}", operation, scalars, inputs, note))
    return cases


def prototype_prune_cases(operation: str) -> list[Case]:
    """Prototype pruning from the masses: an idle prototype pruned, a mass exactly at ``ε_K`` (strict
    ``<``: not idle), and the floor ``min_prototypes``."""
    cfg = _DECISION_CONFIG
    eps = cfg.eps_K
    state = _decision_state(4, last_growth_step=20)
    counted = replace(state, prototypes=tuple(PrototypeRecord(j, 1) for j in range(3)))
    two = replace(counted, prototypes=counted.prototypes[:2])
    settings = (
        ("idle_pruned", cfg, counted, [0.6, 0.38, 0.02], "mass 0.02 < ε_K for T_prune checks"),
        ("mass_at_floor", cfg, counted, [0.6, 0.35, eps], "mass = ε_K exactly: not idle"),
        ("min_prototypes", replace(cfg, min_prototypes=2), two, [0.99, 0.01], "at the floor min_prototypes"),
        *_exact_prototype_settings(cfg),
    )
    cases: list[Case] = []
    for name, c, s, mass, note in settings:
        scalars: dict[str, Scalar] = {**encode_growth_config(c), "step": 40}
        inputs = {**encode_growth_state("state", s), "mass": _f64(mass)}
        cases.append(Case(f"{operation}/{name}", operation, scalars, inputs, note))
    return cases


def _exact_prototype_settings(
    cfg: GrowthConfig,
) -> tuple[tuple[str, GrowthConfig, GrowthState, list[float], str], ...]:
    """Prototype prunes where the floor binds and the ORDER decides which prototypes go: ids, positions
    and masses in three different orders (dyadic masses, each ≥ 1/64 from ε_K)."""
    Q_cap = np.zeros((4, 0), dtype=np.float64)

    def state(ids: tuple[int, ...]) -> GrowthState:
        return GrowthState(
            Q_cap=Q_cap,
            last_growth_step=20,
            heads=(HeadRecord(0, 0, 0),),
            prototypes=tuple(PrototypeRecord(pid, 1) for pid in ids),
        )

    return (
        (
            "floor_by_mass",
            replace(cfg, min_prototypes=3),
            state((3, 6, 9, 1, 2)),
            [0.453125, 0.03125, 0.0078125, 0.4921875, 0.015625],
            "SPEC §3.5, smallest mass first when min_prototypes = 3 binds: ids 6, 9, 2 are idle and eligible "
            "(masses 1/32, 1/128, 1/64 < ε_K = 0.05) and two may go: 9 then 2 (by mass), not 6 and 9 (by "
            "position) nor 2 and 6 (by id); 6 keeps its count 2",
        ),
        (
            "all_idle_last_kept",
            replace(cfg, eps_K=0.5),
            state((0, 1, 2)),
            [0.4375, 0.25, 0.3125],
            "SPEC §3.5, at least one prototype remains: every mass is below ε_K = 0.5 and eligible; 1 (0.25) "
            "and 2 (0.3125) go, smallest mass first, and 0 (the largest mass, first by position) stays",
        ),
        (
            "equal_masses_by_id",
            replace(cfg, eps_K=0.125, min_prototypes=2),
            state((5, 2, 7)),
            [0.0625, 0.0625, 0.875],
            "ties in mass go by prototype id: 5 and 2 have the same mass 1/16 < ε_K = 1/8 and one may go "
            "(min_prototypes = 2): id 2 (the smaller id, second by position)",
        ),
    )


TRAIN_LR = LearningRates(rest=1e-2, prototypes=3e-2, temperatures=5e-3)


def train_step_cases(operation: str) -> list[Case]:
    """One Adam step: fresh state, continuing state (every parameter at t = 5), and right after a
    birth (the new head has no moments; the others continue at t = 7)."""
    from reference.backward import loss_and_gradients
    from reference.optim import Adam

    cases: list[Case] = []
    _, cfg, params, x, labels, _ = layer_setting(0)
    opt = Adam(lr=TRAIN_LR)
    state = AdamState()
    flat = flatten(params)
    for _ in range(5):
        _, grads = loss_and_gradients(params, cfg, x, labels)
        new, state = opt.step(state, flat, grads)
        flat = new
    continuing = params_from_arrays(flat, next_head_id=params.next_head_id, prototype_ids=params.prototype_ids)
    state7 = AdamState(moments={k: replace(v, t=7) for k, v in state.moments.items()})
    born, _ = add_head(continuing, cfg, rng=birth_rng(0, continuing.next_head_id))
    settings = (
        ("adam_fresh", params, AdamState(), "no moments yet: every parameter at its first step"),
        ("adam_continuing", continuing, state, "every parameter at t = 5"),
        ("adam_after_birth", born, state7, "head 1 just born (no moments); the rest at t = 7"),
    )
    for name, p, st, note in settings:
        arrays, scalars = encode_params("params", p)
        scalars.update(encode_layer_config(cfg))
        scalars.update(encode_lr(TRAIN_LR))
        inputs = {**arrays, **encode_adam(st), "x": x, "labels": labels}
        cases.append(Case(f"{operation}/{name}", operation, scalars, inputs, note))
    return cases


TRAJECTORY_LAYER = LayerConfig(d_in=4, d=5, d_k=2, d_v=2, seq_len=4, K_max=4, n_classes=2, T_P=1.0, lambda_q=0.1)
TRAJECTORY_STEPS = 40
TRAJECTORY_GROWTH = GrowthConfig(theta=0.5, phi_g=10.0, T_d=10, T_prune=1, eps_K=0.2)


def trajectory_inputs(growth_cfg: GrowthConfig = TRAJECTORY_GROWTH) -> TrajectoryInputs:
    """A short run of the planted-offsets task (the shape of tests/_small_run.py, shorter)."""
    cfg = TRAJECTORY_LAYER
    data = planted_offsets(n_train=64, n_test=8, seq_len=4, d_in=4, offsets=(1, 2), rng=np.random.default_rng(0))
    rng = np.random.default_rng(37)
    params = init_params(cfg, rng=rng)
    idx = np.stack([rng.choice(64, size=8, replace=False) for _ in range(TRAJECTORY_STEPS)])
    probe = rng.choice(64, size=16, replace=False)
    seed = 0
    births = {}
    for hid in range(1, 1 + cfg.d + 1):
        head = init_head(cfg, birth_rng(seed, hid))
        births[hid] = {f: np.array(getattr(head, f), dtype=np.float64) for f in HEAD_PARAM_NAMES}
    return TrajectoryInputs(
        layer_cfg=cfg,
        growth_cfg=growth_cfg,
        check_every=10,
        lr=LearningRates.uniform(1e-2),
        seed=seed,
        params=params,
        batches_x=np.array(data.x_train[idx], dtype=np.float64),
        batches_labels=np.array(data.labels_train[idx], dtype=np.int64),
        probe_x=np.array(data.x_train[probe], dtype=np.float64),
        probe_labels=np.array(data.labels_train[probe], dtype=np.int64),
        births=births,
    )


def encode_trajectory_inputs(check: str, inputs: TrajectoryInputs, note: str) -> Case:
    """The case ``check`` (``operation/name``) of a trajectory's inputs."""
    arrays, scalars = encode_params("params", inputs.params)
    scalars.update(encode_layer_config(inputs.layer_cfg))
    scalars.update(encode_growth_config(inputs.growth_cfg))
    scalars.update(encode_lr(inputs.lr))
    scalars.update({"check_every": inputs.check_every, "seed": inputs.seed})
    arrays.update(
        {
            "batches_x": inputs.batches_x,
            "batches_labels": inputs.batches_labels,
            "probe_x": inputs.probe_x,
            "probe_labels": inputs.probe_labels,
        }
    )
    for hid, head in inputs.births.items():
        for f, v in head.items():
            arrays[f"births.{hid}.{f}"] = np.array(v, dtype=np.float64)
    return Case(check, check.split("/")[0], scalars, arrays, note)


def trajectory_cases(operation: str) -> list[Case]:
    """The short run (a birth, that head's prune, two prototype prunes), and the same run with θ set to the
    ``λ_max`` of its second check (a near-tie there, where the comparison must stop)."""
    base = trajectory_inputs()
    _, pairs = run_trajectory(ReferenceEngine(), base)
    # the second check's λ_max (rows (step, statistic, threshold, kind); kind 0 is λ_max vs θ)
    lam_rows = pairs[pairs[:, 3] == 0]
    theta_tie = float(lam_rows[1, 1])
    tie = trajectory_inputs(replace(TRAJECTORY_GROWTH, theta=theta_tie))
    if not math.isfinite(theta_tie) or theta_tie <= 0.0:
        raise RuntimeError(f"trajectory_cases: the second check's λ_max {theta_tie!r} cannot be a threshold")
    return [
        encode_trajectory_inputs(f"{operation}/short_run", base, f"{TRAJECTORY_STEPS} steps, a check every 10"),
        encode_trajectory_inputs(
            f"{operation}/near_tie", tie, "θ = λ_max of the second check: the comparison stops there"
        ),
    ]


__all__ = [
    "DCL_ETA",
    "EXACT_BLOCKS",
    "EXACT_C",
    "EXACT_PRUNE",
    "EXACT_STEP",
    "FORMAT_VERSION",
    "SMALL_LAYER",
    "TRACKED_STEPS",
    "TRAIN_LR",
    "TRAJECTORY_CHECK_FIELDS",
    "TRAJECTORY_GROWTH",
    "TRAJECTORY_LAYER",
    "TRAJECTORY_STEPS",
    "Arrays",
    "Case",
    "Scalar",
    "dcl_cases",
    "decode_adam",
    "decode_growth_config",
    "decode_growth_state",
    "decode_layer_config",
    "decode_lr",
    "decode_params",
    "decode_trajectory",
    "encode_adam",
    "encode_check_statistics",
    "encode_growth_config",
    "encode_growth_state",
    "encode_layer_config",
    "encode_lr",
    "encode_params",
    "encode_trajectory_inputs",
    "encode_trajectory_outputs",
    "exact_head_operators",
    "exact_prune_cases",
    "grow_decision_cases",
    "growth_statistics_cases",
    "layer_cases",
    "layer_setting",
    "primitive_cases",
    "prototype_prune_cases",
    "prune_decision_cases",
    "static_growth_cases",
    "tracked_growth_cases",
    "tracker_cases",
    "train_step_cases",
    "trajectory_cases",
    "trajectory_inputs",
]
