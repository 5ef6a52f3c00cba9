"""Study: the DDCL block alone as a clustering method (protocol in docs/studies/cluster.md).

One run is a data set × a setting × a seed: train the DDCL block (SPEC §2) for ``steps`` Adam steps,
read the clusters out as nearest prototypes, and score them against the labels (Hungarian accuracy,
NMI, ARI). D1 (``L_q = L_OLS + V``, ``V ≥ 0``) is checked by the reference's invariant at every step.
Every result here is ``measured``.

The losses and their gradients come from :mod:`reference.ddcl` (``L_q`` through the softmax:
``grad_quantisation_full``) and :mod:`reference.dcl` (the dual competitive layer); the ``L_OLS``
ablation's gradient and the small backbone's backward are written out below (the tests check both
against central differences). Everything is float64 NumPy: at these sizes (at most 256 × 1000 per
step) the accelerated engine's per-call overhead exceeds the arithmetic, so it would not help.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

# scipy and threadpoolctl are dependencies (scikit-learn's too); they ship no type stubs (pyproject's mypy
# overrides).
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs, make_circles, make_classification, make_moons
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from threadpoolctl import threadpool_limits

from ddcl_incrt.arguments import CLUSTER_MAX_SEEDS
from ddcl_incrt.output_paths import check_output_dir, write_with_fallback
from reference import dcl, ddcl
from reference._arrays import F64Array, arr, f64
from reference.invariants.ddcl import REFERENCE_OPS, DDCLOps, d1_decomposition
from reference.invariants.result import InvariantResult
from reference.optim import Adam, AdamState, LearningRates
from training.files import write_atomic

# --------------------------------------------------------------------------------------------------
# Data sets (docs/studies/cluster.md, "Data sets")
# --------------------------------------------------------------------------------------------------

MADELON_DIMS: tuple[int, ...] = (10, 50, 200, 500, 1000)
DATASETS: tuple[str, ...] = ("digits", "blobs", "moons", "circles", *(f"madelon-{d}" for d in MADELON_DIMS))


@dataclass(frozen=True)
class Dataset:
    """Standardised features ``X`` (n×d), integer labels (n,), and the number of classes ``k``."""

    name: str
    X: F64Array
    labels: np.ndarray[Any, np.dtype[np.int64]]
    k: int


def standardise(X: F64Array) -> F64Array:
    """Each feature to mean 0 and (population) variance 1; a constant feature becomes 0 (not NaN)."""
    X_ = arr(X)
    centred = X_ - X_.mean(axis=0, keepdims=True)
    std = centred.std(axis=0, keepdims=True)
    return arr(centred / np.where(std > 0.0, std, 1.0))


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or int(seed) < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def make_dataset(name: str, seed: int) -> Dataset:
    """The data set ``name`` (one of :data:`DATASETS`) drawn with ``random_state = seed``, standardised."""
    s = _check_seed(seed)
    X: Any
    y: Any
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        k = 10
    elif name == "blobs":
        X, y = make_blobs(n_samples=500, centers=4, n_features=2, cluster_std=1.0, random_state=s)
        k = 4
    elif name == "moons":
        X, y = make_moons(n_samples=500, noise=0.05, random_state=s)
        k = 2
    elif name == "circles":
        X, y = make_circles(n_samples=500, noise=0.05, factor=0.5, random_state=s)
        k = 2
    elif name.startswith("madelon-") and name in DATASETS:
        d = int(name.removeprefix("madelon-"))
        X, y = make_classification(
            n_samples=100,
            n_features=d,
            n_informative=5,
            n_redundant=min(15, d - 5),
            n_repeated=0,
            n_classes=2,
            n_clusters_per_class=2,
            class_sep=1.0,
            flip_y=0.0,
            random_state=s,
        )
        k = 2
    else:
        raise ValueError(f"name: unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    return Dataset(name, standardise(arr(np.asarray(X, dtype=np.float64))), np.asarray(y, dtype=np.int64), k)


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def _check_labelings(labels_true: object, labels_pred: object) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    t = np.asarray(labels_true)
    p = np.asarray(labels_pred)
    for name, a in (("labels_true", t), ("labels_pred", p)):
        if a.ndim != 1 or a.size == 0 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name}: expected a non-empty 1-d integer array, got dtype {a.dtype}, shape {a.shape}")
    if t.shape != p.shape:
        raise ValueError(f"labels_pred: expected {t.shape[0]} labels (as labels_true), got {p.shape[0]}")
    return t, p


def clustering_accuracy(labels_true: object, labels_pred: object) -> float:
    """Hungarian clustering accuracy: the best one-to-one matching of clusters to classes (scipy's
    ``linear_sum_assignment`` on the contingency table), matched points / n. Unmatched clusters (when
    there are more clusters than classes, or fewer) count as wrong."""
    t, p = _check_labelings(labels_true, labels_pred)
    classes, t_idx = np.unique(t, return_inverse=True)
    clusters, p_idx = np.unique(p, return_inverse=True)
    table = np.zeros((clusters.size, classes.size), dtype=np.int64)
    np.add.at(table, (p_idx, t_idx), 1)
    rows, cols = (np.asarray(a, dtype=np.int64) for a in linear_sum_assignment(table, maximize=True))
    return float(table[rows, cols].sum()) / float(t.size)


METRICS: tuple[str, ...] = ("acc", "nmi", "ari")


def cluster_metrics(labels_true: object, labels_pred: object) -> dict[str, float]:
    """``acc`` (Hungarian accuracy), ``nmi`` (scikit-learn, arithmetic normalisation), ``ari``."""
    t, p = _check_labelings(labels_true, labels_pred)
    return {
        "acc": clustering_accuracy(t, p),
        "nmi": float(normalized_mutual_info_score(t, p)),
        "ari": float(adjusted_rand_score(t, p)),
    }


# --------------------------------------------------------------------------------------------------
# Settings and the protocol's numbers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One column of the study: how features, loss, prototypes and temperature are chosen."""

    name: str
    backbone: bool
    loss: Literal["L_q", "L_OLS"]
    prototypes: Literal["dcl", "free"]
    annealed: bool
    fixed_ratio: float | None = None
    """A fixed ``T_P / T_c`` of this setting's own (the addendum's ``T-cold``, ``T-hot``); ``None``: the
    protocol's ``temperature_ratio`` (the fixed settings' temperature and the annealed schedule's end)."""

    def __post_init__(self) -> None:
        if self.fixed_ratio is not None:
            if self.annealed:
                raise ValueError(f"Setting {self.name}: an annealed setting has no fixed_ratio")
            r = self.fixed_ratio
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 < float(r) < math.inf:
                raise ValueError(f"Setting {self.name}: fixed_ratio must be a finite positive number, got {r!r}")

    def ratio(self, protocol: Protocol) -> float:
        """``T_P / T_c`` held (fixed) or reached (annealed) by this setting under ``protocol``."""
        return protocol.temperature_ratio if self.fixed_ratio is None else float(self.fixed_ratio)


# The paper's fixed T = 0.1 and T = 2.0 against its annealing 2 → 0.5, placed relative to the study's
# schedule T_c → 0.1 T_c (docs/studies/cluster.md, "Protocol addendum"): T = 2.0 is the schedule's start
# held (T_c); T = 0.1 is one fifth of the schedule's end (0.1 T_c / 5).
T_COLD_RATIO = 0.02
T_HOT_RATIO = 1.0

SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("ddcl", backbone=False, loss="L_q", prototypes="dcl", annealed=False),
        Setting("backbone", backbone=True, loss="L_q", prototypes="dcl", annealed=False),
        Setting("ols-only", backbone=False, loss="L_OLS", prototypes="dcl", annealed=False),
        Setting("free", backbone=False, loss="L_q", prototypes="free", annealed=False),
        Setting("annealed", backbone=False, loss="L_q", prototypes="dcl", annealed=True),
        # The protocol addendum (2026-12-06).
        Setting("backbone-ols", backbone=True, loss="L_OLS", prototypes="dcl", annealed=False),
        Setting("T-cold", backbone=False, loss="L_q", prototypes="dcl", annealed=False, fixed_ratio=T_COLD_RATIO),
        Setting("T-hot", backbone=False, loss="L_q", prototypes="dcl", annealed=False, fixed_ratio=T_HOT_RATIO),
        Setting("backbone-annealed", backbone=True, loss="L_q", prototypes="dcl", annealed=True),
        Setting(
            "backbone-T-cold", backbone=True, loss="L_q", prototypes="dcl", annealed=False, fixed_ratio=T_COLD_RATIO
        ),
        Setting("backbone-T-hot", backbone=True, loss="L_q", prototypes="dcl", annealed=False, fixed_ratio=T_HOT_RATIO),
    )
}
KMEANS = "kmeans"
ORIGINAL_SETTING_NAMES: tuple[str, ...] = ("ddcl", "backbone", "ols-only", "free", "annealed", KMEANS)
"""The six settings of the original protocol (measured 2026-12-02)."""
ADDENDUM_SETTING_NAMES: tuple[str, ...] = (
    "backbone-ols",
    "T-cold",
    "T-hot",
    "backbone-annealed",
    "backbone-T-cold",
    "backbone-T-hot",
)
"""The settings of the protocol addendum (2026-12-06)."""
SETTING_NAMES: tuple[str, ...] = (*ORIGINAL_SETTING_NAMES[:-1], *ADDENDUM_SETTING_NAMES, KMEANS)


@dataclass(frozen=True)
class Protocol:
    """The numbers of docs/studies/cluster.md (defaults are the protocol's; ``--quick`` shortens ``steps``)."""

    steps: int = 200
    batch: int = 128
    anchors: int = 128
    hidden: int = 32
    lr_prototypes: float = 0.05
    lr_backbone: float = 0.005
    temperature_ratio: float = 0.1
    kmeans_n_init: int = 10

    def __post_init__(self) -> None:
        for name in ("steps", "batch", "anchors", "hidden", "kmeans_n_init"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Protocol.{name}: expected a positive integer, got {value!r}")
        for name in ("lr_prototypes", "lr_backbone", "temperature_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < math.inf:
                raise ValueError(f"Protocol.{name}: expected a finite positive number, got {value!r}")
        if not self.temperature_ratio < 1.0:
            raise ValueError(f"Protocol.temperature_ratio: expected < 1 (below T_c), got {self.temperature_ratio!r}")


def critical_temperature(Y: F64Array) -> float:
    """``T_c = 2 λ_max(Cov Y)``: D4's collapse temperature of ``F`` (``reference.ddcl``)."""
    return ddcl.collapse_critical_temperatures(Y)[0]


def temperature(T_c: float, step: int, steps: int, *, annealed: bool, ratio: float) -> float:
    """Fixed: ``ratio·T_c``. Annealed: ``T_c · ratio^{min(1, 2t/S)}`` (geometric to ``ratio·T_c`` over the
    first half of the ``S`` steps, then held), so both schedules end at the same temperature."""
    if not annealed:
        return ratio * T_c
    return float(T_c * ratio ** min(1.0, 2.0 * step / steps))


# --------------------------------------------------------------------------------------------------
# Forward and backward of one step
# --------------------------------------------------------------------------------------------------

Params = dict[str, F64Array]


def ols_gradients(Y: F64Array, P: F64Array, T_P: float) -> tuple[F64Array, F64Array]:
    """``(∇_Y, ∇_P)`` of ``L_OLS = (1/n)‖Y − QPᵀ‖²_F`` with ``Q = softmax(−D/T_P)`` differentiated too.

    With ``R = Y − QPᵀ``: directly ``∇_Y = (2/n)R``, ``∇_P = −(2/n)RᵀQ`` and ``G = ∂L/∂Q = −(2/n)RP``;
    through the softmax ``∂L/∂D_tl = −(1/T_P) q_tl (G_tl − q_tᵀG_t)``, pulled back to ``Y`` and ``P`` by
    :func:`reference.ddcl.pullback_distances`.
    """
    n = Y.shape[0]
    D = ddcl.squared_distances(Y, P)
    Q = ddcl.soft_assignments(D, T_P)
    R = Y - Q @ P.T
    G = -(2.0 / n) * (R @ P)
    G_D = -(Q * (G - np.sum(G * Q, axis=1, keepdims=True))) / T_P
    gY_D, gP_D = ddcl.pullback_distances(Y, P, arr(G_D))
    return arr((2.0 / n) * R + gY_D), arr(-(2.0 / n) * (R.T @ Q) + gP_D)


def features(params: Mapping[str, F64Array], X: F64Array) -> tuple[F64Array, F64Array | None]:
    """``f(X)``: ``X`` when there is no backbone, else ``X + tanh(XW₁ + 1b₁ᵀ)W₂``; also the hidden layer."""
    if "W1" not in params:
        return X, None
    H = arr(np.tanh(X @ params["W1"] + params["b1"][None, :]))
    return arr(X + H @ params["W2"]), H


def prototypes(params: Mapping[str, F64Array], Y_b: F64Array) -> F64Array:
    """``P``: the free parameter, or the DCL's ``Y_bᵀW + 1bᵀ`` of the anchors' features ``Y_b``."""
    return params["P"] if "P" in params else dcl.dcl_prototypes(Y_b, params["W"], params["b"])


def _forward(
    params: Mapping[str, F64Array], X: F64Array, X_anchor: F64Array
) -> tuple[F64Array, F64Array, F64Array, F64Array, F64Array | None]:
    """Batch and anchors through the features (one stacked pass), then the prototypes."""
    stacked = arr(np.vstack([X, X_anchor]))
    Y_all, H = features(params, stacked)
    m = X.shape[0]
    Y, Y_b = arr(Y_all[:m]), arr(Y_all[m:])
    return stacked, Y, Y_b, prototypes(params, Y_b), H


def step_loss(setting: Setting, params: Mapping[str, F64Array], X: F64Array, X_anchor: F64Array, T_P: float) -> float:
    """The loss a step descends on batch ``X``: ``L_q`` or ``L_OLS`` at softmax assignments of ``T_P``."""
    _, Y, _, P, _ = _forward(params, X, X_anchor)
    Q = ddcl.assignments(Y, P, T_P)
    return ddcl.quantisation_loss(Y, P, Q) if setting.loss == "L_q" else ddcl.ols_loss(Y, P, Q)


def step_gradients(
    setting: Setting, params: Mapping[str, F64Array], X: F64Array, X_anchor: F64Array, T_P: float
) -> tuple[Params, F64Array, F64Array]:
    """The gradient of :func:`step_loss` for every parameter, and the batch's ``Y`` and ``P`` (for D1).
    Gradients reach the backbone through the batch and, with the DCL, through the anchors."""
    stacked, Y, Y_b, P, H = _forward(params, X, X_anchor)
    gY, gP = ddcl.grad_quantisation_full(Y, P, T_P) if setting.loss == "L_q" else ols_gradients(Y, P, T_P)
    grads: Params = {}
    gY_b = np.zeros_like(Y_b)
    if "P" in params:
        grads["P"] = gP
    else:
        grads["W"], grads["b"] = dcl.dcl_gradients(Y_b, gP)
        gY_b = arr(params["W"] @ gP.T)  # P = Y_bᵀW + 1bᵀ ⇒ ∂L/∂Y_b = W (∇_P L)ᵀ
    if H is not None:
        g_all = np.vstack([gY, gY_b])
        grads["W2"] = arr(H.T @ g_all)
        g_pre = (g_all @ params["W2"].T) * (1.0 - H * H)
        grads["W1"] = arr(stacked.T @ g_pre)
        grads["b1"] = arr(g_pre.sum(axis=0))
    return grads, Y, P


def initial_params(
    setting: Setting, data: Dataset, protocol: Protocol, seed: int
) -> tuple[Params, F64Array, dict[str, float]]:
    """Parameters at step 0, the anchor batch ``X_b``, and each parameter's Adam rate (the protocol's)."""
    n, d = data.X.shape
    rng_init = np.random.default_rng([seed, 1])
    n_b = min(n, protocol.anchors)
    anchor_idx = rng_init.choice(n, size=n_b, replace=False)
    chosen = rng_init.choice(n_b, size=data.k, replace=False)  # K = k distinct anchors
    X_b = arr(data.X[anchor_idx])
    lr = protocol.lr_prototypes
    params: Params = {}
    rates: dict[str, float] = {}
    if setting.prototypes == "free":
        params["P"] = arr(X_b[chosen].T.copy())
        rates["P"] = lr
    else:
        W = np.zeros((n_b, data.k))
        W[chosen, np.arange(data.k)] = 1.0
        params["W"], params["b"] = arr(W), arr(np.zeros(data.k))
        rates["W"], rates["b"] = lr / n_b, lr
    if setting.backbone:
        rng_bb = np.random.default_rng([seed, 3])
        params["W1"] = arr(rng_bb.standard_normal((d, protocol.hidden)) / math.sqrt(d))
        params["b1"] = arr(np.zeros(protocol.hidden))
        params["W2"] = arr(np.zeros((protocol.hidden, d)))
        rates.update(W1=protocol.lr_backbone, b1=protocol.lr_backbone, W2=protocol.lr_backbone)
    return params, X_b, rates


# --------------------------------------------------------------------------------------------------
# D1 at every step
# --------------------------------------------------------------------------------------------------


@dataclass
class D1Tally:
    """Running count of D1's checks over a run: how many, how many violated, the smallest margin, and how
    many were uncertified (infinite bound), with the first violation's description."""

    checks: int = 0
    violations: int = 0
    min_margin: float = math.inf
    uncertified: int = 0
    first_violation: str | None = None

    def add(self, results: Sequence[InvariantResult], step: int) -> None:
        for r in results:
            self.checks += 1
            self.min_margin = min(self.min_margin, r.margin)
            self.uncertified += not r.certified
            if not r.holds:
                self.violations += 1
                if self.first_violation is None:
                    self.first_violation = f"step {step}: {r.describe()}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": self.checks,
            "violations": self.violations,
            "min_margin": None if math.isinf(self.min_margin) else self.min_margin,
            "uncertified": self.uncertified,
            "first_violation": self.first_violation,
        }


def check_d1(Y: F64Array, P: F64Array, T_P: float, tally: D1Tally, step: int, ops: DDCLOps = REFERENCE_OPS) -> None:
    """D1 on the step's batch features, prototypes and softmax assignments at the step's temperature;
    ``ops`` is the implementation checked (the reference; a test plants a broken one)."""
    Q = ops.soft_assignments(ops.squared_distances(Y, P), T_P)
    tally.add(d1_decomposition(Y=Y, P=P, Q=Q, ops=ops), step)


# --------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """One data set × setting × seed: metrics, D1 tally, final losses, diagnostics, wall time."""

    dataset: str
    setting: str
    seed: int
    metrics: dict[str, float]
    d1: dict[str, Any]
    final: dict[str, float]
    empty_clusters: int
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "setting": self.setting,
            "seed": self.seed,
            **self.metrics,
            "d1": self.d1,
            "final": self.final,
            "empty_clusters": self.empty_clusters,
            "wall_s": self.wall_s,
        }


def _batches(n: int, size: int, steps: int, rng: np.random.Generator) -> list[np.ndarray[Any, Any]]:
    """``steps`` minibatch index arrays of ``min(n, size)`` points, reshuffling at every epoch."""
    b = min(n, size)
    out: list[np.ndarray[Any, Any]] = []
    order = rng.permutation(n)
    pos = 0
    for _ in range(steps):
        if pos + b > n:
            order, pos = rng.permutation(n), 0
        out.append(order[pos : pos + b])
        pos += b
    return out


def _kmeans_run(data: Dataset, seed: int, protocol: Protocol) -> RunResult:
    start = time.perf_counter()
    km = KMeans(n_clusters=data.k, n_init=protocol.kmeans_n_init, random_state=seed).fit(data.X)
    pred = np.asarray(km.labels_, dtype=np.int64)
    empty = data.k - int(np.unique(pred).size)
    final = {"inertia_per_point": float(km.inertia_) / data.X.shape[0]}
    return RunResult(
        data.name, KMEANS, seed, cluster_metrics(data.labels, pred), {}, final, empty, time.perf_counter() - start
    )


def run_one(
    data: Dataset, setting_name: str, seed: int, protocol: Protocol = Protocol(), *, ops: DDCLOps = REFERENCE_OPS
) -> RunResult:
    """Train setting ``setting_name`` on ``data`` with seed ``seed`` and score it (docs/studies/cluster.md)."""
    s = _check_seed(seed)
    if setting_name not in SETTING_NAMES:
        raise ValueError(f"setting_name: unknown setting {setting_name!r}; expected one of {', '.join(SETTING_NAMES)}")
    if not isinstance(protocol, Protocol):
        raise TypeError(f"protocol: expected Protocol, got {type(protocol).__name__}")
    if setting_name == KMEANS:
        return _kmeans_run(data, s, protocol)
    setting = SETTINGS[setting_name]
    start = time.perf_counter()
    params, X_b, rates = initial_params(setting, data, protocol, s)
    # The reference optimiser keys its state by the layer's parameter names; the study's parameters are
    # not layer parameters, so each gets its own one-parameter Adam under the prototype key ("P"), at
    # that parameter's rate: the reference's update rule, unchanged.
    optimisers = {name: Adam(LearningRates.uniform(rate)) for name, rate in rates.items()}
    states: dict[str, AdamState] = {name: opt.init_state() for name, opt in optimisers.items()}
    T_c = critical_temperature(features(params, data.X)[0])
    tally = D1Tally()
    batches = _batches(data.X.shape[0], protocol.batch, protocol.steps, np.random.default_rng([s, 2]))
    for step, idx in enumerate(batches):
        T_P = temperature(T_c, step, protocol.steps, annealed=setting.annealed, ratio=setting.ratio(protocol))
        grads, Y, P = step_gradients(setting, params, arr(data.X[idx]), X_b, T_P)
        check_d1(Y, P, T_P, tally, step, ops)
        for name, opt in optimisers.items():
            new, states[name] = opt.step(states[name], {"P": params[name]}, {"P": grads[name]})
            params[name] = new["P"]
    T_final = temperature(T_c, protocol.steps, protocol.steps, annealed=setting.annealed, ratio=setting.ratio(protocol))
    Y_all = features(params, data.X)[0]
    P = prototypes(params, features(params, X_b)[0])
    D = ddcl.squared_distances(Y_all, P)
    pred = np.asarray(np.argmin(D, axis=1), dtype=np.int64)
    Q = ddcl.soft_assignments(D, T_final)
    centred_X = data.X - data.X.mean(axis=0)
    centred_Y = Y_all - Y_all.mean(axis=0)
    final = {
        "L_q": ddcl.quantisation_loss(Y_all, P, Q),
        "L_OLS": ddcl.ols_loss(Y_all, P, Q),
        "V": ddcl.prototype_variance(P, Q),
        "T_c": T_c,
        "T_P": T_final,
        "feature_scale": f64(np.linalg.norm(centred_Y)) / max(f64(np.linalg.norm(centred_X)), 1e-300),
    }
    empty = data.k - int(np.unique(pred).size)
    return RunResult(
        data.name,
        setting_name,
        s,
        cluster_metrics(data.labels, pred),
        tally.to_dict(),
        final,
        empty,
        time.perf_counter() - start,
    )


def dcl_update_residuals(
    data: Dataset,
    setting_name: str,
    seed: int,
    protocol: Protocol = Protocol(),
    *,
    optimiser: Literal["adam", "sgd", "sgd-equal-rates"] = "adam",
) -> dict[str, list[float]]:
    """At every step of a run of a frozen-feature DCL setting, how far the prototypes' move ``ΔP`` is from
    D6's preconditioned gradient step (docs/theory.md, "D6 under Adam"): the best-rate relative
    residual (:func:`reference.dcl.best_rate_residual`) of ``ΔP`` against ``M∇_P L`` (``M = Y_bᵀY_b +
    11ᵀ``, D6's; ``"vs_M"``) and
    against ``(η_W Y_bᵀY_b + η_b 11ᵀ)∇_P L`` (``"vs_rate_weighted"``: the gradient step's move when ``W`` and
    ``b`` have different rates, as in the study, ``η_W = η_b/n_b``). ``∇_P L`` is the step's gradient on its
    batch, ``ΔP = P(W⁺, b⁺) − P(W, b)``. ``optimiser``: ``"adam"`` (the study's, the run of :func:`run_one`),
    ``"sgd"`` (plain gradient steps at the study's rates) or ``"sgd-equal-rates"`` (both at ``η_b``): the two
    controls, where the corresponding residual is 0 up to rounding."""
    s = _check_seed(seed)
    setting = SETTINGS.get(setting_name)
    if setting is None or setting.backbone or setting.prototypes != "dcl":
        raise ValueError(f"setting_name: expected a frozen-feature DCL setting, got {setting_name!r}")
    params, X_b, rates = initial_params(setting, data, protocol, s)
    if optimiser == "sgd-equal-rates":
        rates = {"W": rates["b"], "b": rates["b"]}
    elif optimiser not in ("adam", "sgd"):
        raise ValueError(f"optimiser: expected 'adam', 'sgd' or 'sgd-equal-rates', got {optimiser!r}")
    optimisers = {name: Adam(LearningRates.uniform(rate)) for name, rate in rates.items()}
    states: dict[str, AdamState] = {name: opt.init_state() for name, opt in optimisers.items()}
    gram = X_b.T @ X_b
    ones = np.ones_like(gram)
    M = gram + ones
    M_rates = rates["W"] * gram + rates["b"] * ones
    T_c = critical_temperature(data.X)
    out: dict[str, list[float]] = {"vs_M": [], "vs_rate_weighted": []}
    batches = _batches(data.X.shape[0], protocol.batch, protocol.steps, np.random.default_rng([s, 2]))
    for step, idx in enumerate(batches):
        T_P = temperature(T_c, step, protocol.steps, annealed=setting.annealed, ratio=setting.ratio(protocol))
        X = arr(data.X[idx])
        P = prototypes(params, X_b)
        gP = ddcl.grad_quantisation_full(X, P, T_P)[1] if setting.loss == "L_q" else ols_gradients(X, P, T_P)[1]
        grads, _, _ = step_gradients(setting, params, X, X_b, T_P)
        for name, opt in optimisers.items():
            if optimiser == "adam":
                new, states[name] = opt.step(states[name], {"P": params[name]}, {"P": grads[name]})
                params[name] = new["P"]
            else:
                params[name] = arr(params[name] - rates[name] * grads[name])
        dP = prototypes(params, X_b) - P
        out["vs_M"].append(dcl.best_rate_residual(dP, arr(M @ gP)))
        out["vs_rate_weighted"].append(dcl.best_rate_residual(dP, arr(M_rates @ gP)))
    return out


# --------------------------------------------------------------------------------------------------
# The grid, its summary, table and figure
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyResult:
    """Every run of the grid, the protocol it followed, and the total wall and CPU time."""

    protocol: Protocol
    datasets: tuple[str, ...]
    settings: tuple[str, ...]
    seeds: tuple[int, ...]
    runs: tuple[RunResult, ...]
    wall_s: float
    cpu_s: float
    summary: dict[str, dict[str, dict[str, float]]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", summarise(self.runs))

    @property
    def d1_checks(self) -> int:
        return sum(int(r.d1.get("checks", 0)) for r in self.runs)

    @property
    def d1_violations(self) -> int:
        return sum(int(r.d1.get("violations", 0)) for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": "cluster",
            "label": "measured",
            "protocol": "docs/studies/cluster.md",
            "parameters": self.protocol.__dict__,
            "datasets": list(self.datasets),
            "settings": list(self.settings),
            "seeds": list(self.seeds),
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "d1_checks": self.d1_checks,
            "d1_violations": self.d1_violations,
            "summary": self.summary,
            "runs": [r.to_dict() for r in self.runs],
        }


def summarise(runs: Sequence[RunResult]) -> dict[str, dict[str, dict[str, float]]]:
    """``summary[dataset][setting]``: mean and sample std (ddof = 1; 0 for one seed) of every metric,
    the number of seeds, D1 checks and violations, and the mean wall time per run."""
    groups: dict[tuple[str, str], list[RunResult]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.setting), []).append(r)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (dataset, setting), rs in groups.items():
        row: dict[str, float] = {"seeds": float(len(rs))}
        for m in METRICS:
            values = np.array([r.metrics[m] for r in rs])
            row[f"{m}_mean"] = f64(values.mean())
            row[f"{m}_std"] = f64(values.std(ddof=1)) if len(rs) > 1 else 0.0
        row["d1_checks"] = float(sum(int(r.d1.get("checks", 0)) for r in rs))
        row["d1_violations"] = float(sum(int(r.d1.get("violations", 0)) for r in rs))
        row["wall_s_mean"] = f64(np.mean([r.wall_s for r in rs]))
        out.setdefault(dataset, {})[setting] = row
    return out


def markdown_table(result: StudyResult) -> str:
    """One row per data set × setting: ACC, NMI, ARI as mean ± std over the seeds, D1 and time per run."""
    lines = [
        "| data set | setting | ACC | NMI | ARI | D1 checks / violations | s per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for dataset in result.datasets:
        for setting in result.settings:
            row = result.summary.get(dataset, {}).get(setting)
            if row is None:
                continue
            cells = [f"{row[f'{m}_mean']:.3f} ± {row[f'{m}_std']:.3f}" for m in METRICS]
            d1 = "—" if setting == KMEANS else f"{int(row['d1_checks'])} / {int(row['d1_violations'])}"
            lines.append(f"| {dataset} | {setting} | {' | '.join(cells)} | {d1} | {row['wall_s_mean']:.2f} |")
    n_seeds = len(result.seeds)
    lines.append("")
    lines.append(
        f"Mean ± sample std over {n_seeds} seed(s) ({', '.join(map(str, result.seeds))}); `measured`. "
        f"D1: {result.d1_checks} checks, {result.d1_violations} violated. "
        f"Total {result.wall_s:.1f} s wall, {result.cpu_s:.1f} s CPU."
    )
    return "\n".join(lines) + "\n"


def per_seed_markdown(doc: Mapping[str, Any], metric: str = "acc") -> str:
    """Every seed's ``metric`` (one row per data set × setting, one column per seed), from a study's
    :meth:`StudyResult.to_dict` document — so it can also be rebuilt from a saved ``cluster.json``."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    seeds = [int(s) for s in doc["seeds"]]
    values: dict[tuple[str, str], dict[int, float]] = {}
    for r in doc["runs"]:
        values.setdefault((r["dataset"], r["setting"]), {})[int(r["seed"])] = float(r[metric])
    lines = [
        "| data set | setting | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|---|" + "---|" * len(seeds),
    ]
    for dataset in doc["datasets"]:
        for setting in doc["settings"]:
            row = values.get((dataset, setting))
            if row is not None:
                cells = " | ".join("—" if s not in row else f"{row[s]:.3f}" for s in seeds)
                lines.append(f"| {dataset} | {setting} | {cells} |")
    return "\n".join(lines) + "\n"


PAIRED_COMPARISONS: tuple[tuple[str, str], ...] = (
    ("ddcl", KMEANS),
    ("free", "ddcl"),
    ("ols-only", "ddcl"),
    ("annealed", "ddcl"),
    ("backbone", "ddcl"),
    ("backbone-ols", "backbone"),
    ("annealed", "T-cold"),
    ("annealed", "T-hot"),
    ("backbone-annealed", "backbone"),
    ("backbone-annealed", "backbone-T-cold"),
    ("backbone-annealed", "backbone-T-hot"),
)
"""The paired comparisons the study reports (first vs second, same seed): the original five and the
protocol addendum's (docs/studies/cluster.md)."""


def paired_counts(doc: Mapping[str, Any], dataset: str, first: str, second: str, metric: str = "acc") -> dict[str, Any]:
    """On the seeds both settings ran on ``dataset``: how many times ``first``'s ``metric`` is higher (``W``),
    equal to 3 decimals as reported (``T``) or lower (``L``) than ``second``'s, the per-seed differences
    ``first − second`` and their mean. Read from a study's :meth:`StudyResult.to_dict` document."""
    if metric not in METRICS:
        raise ValueError(f"metric: expected one of {', '.join(METRICS)}, got {metric!r}")
    values: dict[str, dict[int, float]] = {first: {}, second: {}}
    for r in doc["runs"]:
        if r["dataset"] == dataset and r["setting"] in values:
            values[r["setting"]][int(r["seed"])] = float(r[metric])
    seeds = sorted(set(values[first]) & set(values[second]))
    diffs = [round(values[first][s], 3) - round(values[second][s], 3) for s in seeds]
    wins = sum(d > 5e-4 for d in diffs)
    losses = sum(d < -5e-4 for d in diffs)
    return {
        "seeds": seeds,
        "W": wins,
        "T": len(seeds) - wins - losses,
        "L": losses,
        "diffs": [values[first][s] - values[second][s] for s in seeds],
        "mean_diff": f64(np.mean([values[first][s] - values[second][s] for s in seeds])) if seeds else math.nan,
    }


def paired_markdown(doc: Mapping[str, Any], metric: str = "acc") -> str:
    """W/T/L counts of :func:`paired_counts` for every comparison of :data:`PAIRED_COMPARISONS` whose two
    settings the document has, one row per data set (``""`` when there is none)."""
    present = set(doc["settings"])
    pairs = [(a, b) for a, b in PAIRED_COMPARISONS if a in present and b in present]
    if not pairs:
        return ""
    lines = [
        "| data set | " + " | ".join(f"{a} vs {b}" for a, b in pairs) + " |",
        "|---|" + "---|" * len(pairs),
    ]
    for dataset in doc["datasets"]:
        cells = []
        for a, b in pairs:
            c = paired_counts(doc, dataset, a, b, metric)
            cells.append(f"{c['W']}W {c['T']}T {c['L']}L ({c['mean_diff']:+.3f})")
        lines.append(f"| {dataset} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def figure_png(result: StudyResult) -> bytes:
    """Grouped bars: one panel per metric, data sets along x, one bar per setting (mean, ± std whiskers)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 8.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)  # an explicit Agg canvas: no pyplot, no global backend
    axes = fig.subplots(len(METRICS), 1, sharex=True)
    x = np.arange(len(result.datasets))
    width = 0.8 / max(1, len(result.settings))
    # matplotlib's default cycle has 10 colours; with more settings (the addendum's) take tab20's 20
    import matplotlib

    n_set = len(result.settings)
    cmap = matplotlib.colormaps["tab10" if n_set <= 10 else "tab20"]
    colours = [cmap(i) for i in range(n_set)]
    for ax, metric in zip(axes, METRICS, strict=True):
        for i, setting in enumerate(result.settings):
            rows = [result.summary.get(ds, {}).get(setting) for ds in result.datasets]
            means = [math.nan if r is None else r[f"{metric}_mean"] for r in rows]
            stds = [0.0 if r is None else r[f"{metric}_std"] for r in rows]
            ax.bar(
                x + (i - (len(result.settings) - 1) / 2) * width,
                means,
                width,
                yerr=stds,
                label=setting,
                capsize=2,
                color=colours[i],
            )
        ax.set_ylabel(metric.upper())
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(ncols=min(6, n_set), fontsize="small", loc="lower left", bbox_to_anchor=(0.0, 1.02))
    axes[-1].set_xticks(x, result.datasets, rotation=30, ha="right")
    fig.suptitle(f"DDCL block as a clustering method: mean ± std over {len(result.seeds)} seeds (measured)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def run_study(
    datasets: Sequence[str] = DATASETS,
    seeds: Sequence[int] = tuple(range(10)),
    protocol: Protocol = Protocol(),
    settings: Sequence[str] = SETTING_NAMES,
    progress: Callable[[str], None] | None = None,
) -> StudyResult:
    """Every data set × setting × seed, in that order; ``progress`` gets one line per run."""
    datasets_ = tuple(datasets)
    unknown = [d for d in datasets_ if d not in DATASETS]
    if not datasets_ or unknown:
        raise ValueError(f"datasets: expected names from {', '.join(DATASETS)}, got {list(datasets_)}")
    settings_ = tuple(settings)
    if not settings_ or any(s not in SETTING_NAMES for s in settings_):
        raise ValueError(f"settings: expected names from {', '.join(SETTING_NAMES)}, got {list(settings_)}")
    seeds_ = tuple(_check_seed(s) for s in seeds)
    if not seeds_:
        raise ValueError("seeds: expected at least one seed")
    # a name given twice would run twice and be pooled into one summary row (twice the seeds it says)
    for arg, names in (("datasets", datasets_), ("settings", settings_), ("seeds", seeds_)):
        if len(set(names)) != len(names):
            twice = sorted({str(n) for n in names if names.count(n) > 1})
            raise ValueError(f"{arg}: each may be given once; given more than once: {', '.join(twice)}")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    runs: list[RunResult] = []
    total = len(datasets_) * len(settings_) * len(seeds_)
    # One BLAS/OpenMP thread: the arrays are at most a few hundred × 1000, where a second thread only
    # adds synchronisation (docs/studies/cluster.md: 2.6× the CPU time with two, identical results).
    with threadpool_limits(limits=1):
        for dataset in datasets_:
            for seed in seeds_:
                data = make_dataset(dataset, seed)
                for setting in settings_:
                    r = run_one(data, setting, seed, protocol)
                    runs.append(r)
                    if progress is not None:
                        progress(
                            f"[{len(runs)}/{total}] {dataset} {setting} seed {seed}: acc {r.metrics['acc']:.3f} "
                            f"nmi {r.metrics['nmi']:.3f} ari {r.metrics['ari']:.3f}, "
                            f"D1 {r.d1.get('violations', 0)}/{r.d1.get('checks', 0)} violated, {r.wall_s:.2f} s"
                        )
    return StudyResult(
        protocol,
        datasets_,
        settings_,
        seeds_,
        tuple(runs),
        time.perf_counter() - wall0,
        time.process_time() - cpu0,
    )


def merge_documents(*docs: Mapping[str, Any]) -> StudyResult:
    """One :class:`StudyResult` from saved ``cluster.json`` documents of the same protocol (e.g. the original
    run and the addendum's), so that its table, per-seed tables, paired comparisons and figure can be
    written for all their rows together. Refuses documents of different protocols or seeds, and a data
    set × setting × seed present twice with different results; wall and CPU times are summed."""
    if not docs:
        raise ValueError("docs: expected at least one cluster.json document")
    params = docs[0]["parameters"]
    seeds = tuple(int(s) for s in docs[0]["seeds"])
    runs: dict[tuple[str, str, int], RunResult] = {}
    datasets: list[str] = []
    settings: list[str] = []
    for doc in docs:
        if doc["parameters"] != params or tuple(int(s) for s in doc["seeds"]) != seeds:
            raise ValueError("docs: documents of different protocols or seeds cannot be merged")
        datasets += [d for d in doc["datasets"] if d not in datasets]
        settings += [s for s in doc["settings"] if s not in settings]
        for r in doc["runs"]:
            run = RunResult(
                r["dataset"],
                r["setting"],
                int(r["seed"]),
                {m: float(r[m]) for m in METRICS},
                dict(r["d1"]),
                {k: float(v) for k, v in r["final"].items()},
                int(r["empty_clusters"]),
                float(r["wall_s"]),
            )
            key = (run.dataset, run.setting, run.seed)
            if key in runs and runs[key].metrics != run.metrics:
                raise ValueError(f"docs: {key} appears twice with different metrics")
            runs.setdefault(key, run)
    order = {name: i for i, name in enumerate(SETTING_NAMES)}
    settings.sort(key=lambda s: order.get(s, len(order)))
    ordered = [runs[(d, s, seed)] for d in datasets for seed in seeds for s in settings if (d, s, seed) in runs]
    return StudyResult(
        Protocol(**params),
        tuple(datasets),
        tuple(settings),
        seeds,
        tuple(ordered),
        sum(float(doc["wall_s"]) for doc in docs),
        sum(float(doc["cpu_s"]) for doc in docs),
    )


def write_outputs(result: StudyResult, out_dir: Path) -> dict[str, Path]:
    """``cluster.json`` (every seed), ``cluster.md`` (the table) and ``cluster.png`` (the figure), each
    written atomically into ``out_dir`` (created if needed)."""
    doc = result.to_dict()
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    md = "# DDCL block as a clustering method (measured)\n\nProtocol: docs/studies/cluster.md.\n\n" + markdown_table(
        result
    )
    for metric in METRICS:
        md += f"\n## {metric.upper()} of every seed\n\n" + per_seed_markdown(doc, metric)
    paired = paired_markdown(doc, "acc")
    if paired:
        md += (
            "\n## Paired comparisons of ACC\n\nSeeds on which the first setting's ACC (3 decimals) is higher (W), "
            "equal (T) or lower (L) than the second's, and the mean paired difference first − second.\n\n" + paired
        )
    return {
        "cluster.json": write_atomic(out_dir / "cluster.json", text.encode("utf-8")),
        "cluster.md": write_atomic(out_dir / "cluster.md", md.encode("utf-8")),
        "cluster.png": write_atomic(out_dir / "cluster.png", figure_png(result)),
    }


QUICK_DATASETS: tuple[str, ...] = ("blobs", "moons", "madelon-10")
SEEDS = 10  # the protocol's seed count (docs/studies/cluster.md)
QUICK_SEEDS, QUICK_STEPS = 2, 20  # `ddcl-incrt cluster --quick`: a smoke run, not the protocol
OUTPUT_FILES: tuple[str, ...] = ("cluster.json", "cluster.md", "cluster.png")


def run_cli(
    *,
    out: Path,
    seeds: int | None,
    datasets: Sequence[str] | None,
    quick: bool,
    stream: Any = None,
    settings: Sequence[str] | None = None,
) -> tuple[StudyResult, dict[str, Path]]:
    """What ``ddcl-incrt cluster`` does: the study (``quick``: 20 steps, 2 seeds, three small sets unless
    given; ``settings``: all unless given), its three files; progress lines go to ``stream`` (stderr by
    default). ``seeds`` (a count: seeds ``0..seeds-1``, at most
    :data:`~ddcl_incrt.arguments.CLUSTER_MAX_SEEDS`) and then ``out`` are checked before the study runs;
    if writing there fails at the end, the files go to a temporary folder and
    :class:`~ddcl_incrt.output_paths.OutputWriteError` says where."""
    n_seeds = (QUICK_SEEDS if quick else SEEDS) if seeds is None else seeds
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"seeds: expected a positive number of seeds, got {n_seeds!r}")
    if n_seeds > CLUSTER_MAX_SEEDS:  # the cap is justified where it is defined (ddcl_incrt.arguments)
        shown = str(n_seeds) if n_seeds.bit_length() <= 128 else f"a {n_seeds.bit_length()}-bit int"
        raise ValueError(
            f"seeds: expected at most {CLUSTER_MAX_SEEDS} seeds (a count: seeds 0..N-1 are run), got {shown}"
        )
    out = check_output_dir(out, "--out", files=OUTPUT_FILES)
    err = sys.stderr if stream is None else stream
    protocol = replace(Protocol(), steps=QUICK_STEPS) if quick else Protocol()
    chosen = tuple(datasets) if datasets else (QUICK_DATASETS if quick else DATASETS)

    def progress(line: str) -> None:
        print(line, file=err, flush=True)

    result = run_study(
        chosen, tuple(range(n_seeds)), protocol, tuple(settings) if settings else SETTING_NAMES, progress
    )

    def write(folder: Path) -> dict[str, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        return write_outputs(result, folder)

    return result, write_with_fallback("--out", out, write)


__all__ = [
    "ADDENDUM_SETTING_NAMES",
    "DATASETS",
    "KMEANS",
    "MADELON_DIMS",
    "METRICS",
    "ORIGINAL_SETTING_NAMES",
    "OUTPUT_FILES",
    "PAIRED_COMPARISONS",
    "QUICK_DATASETS",
    "QUICK_SEEDS",
    "QUICK_STEPS",
    "SEEDS",
    "SETTINGS",
    "SETTING_NAMES",
    "T_COLD_RATIO",
    "T_HOT_RATIO",
    "D1Tally",
    "Dataset",
    "Params",
    "Protocol",
    "RunResult",
    "Setting",
    "StudyResult",
    "check_d1",
    "cluster_metrics",
    "clustering_accuracy",
    "critical_temperature",
    "dcl_update_residuals",
    "features",
    "figure_png",
    "initial_params",
    "make_dataset",
    "markdown_table",
    "merge_documents",
    "ols_gradients",
    "paired_counts",
    "paired_markdown",
    "per_seed_markdown",
    "prototypes",
    "run_cli",
    "run_one",
    "run_study",
    "standardise",
    "step_gradients",
    "step_loss",
    "summarise",
    "temperature",
    "write_outputs",
]
