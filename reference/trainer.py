"""The reference trainer: the layer (:mod:`reference.model`, :mod:`reference.backward`), an optimiser
(:mod:`reference.optim`) and the INCRT growth rule (:mod:`reference.growth_phases`) in one loop, with
every applicable invariant recorded in the :class:`reference.run_record.RunRecord` it returns.

One run, in the order the code executes it (SPEC §3):

1. **Initialise** the layer with one head and ``K_max`` prototypes; draw a FIXED probe batch from the
   training set; calibrate ``θ = c_θ · median ‖A_res‖_F`` over ``calibration_probes`` other random
   probes at initialisation and ``φ_g = 0.01 θ`` (SPEC §3.4), unless thresholds are given.
2. **Train**: each step is minibatch SGD/Adam on ``L = L_task + λ_q L_q``
   (:func:`reference.backward.loss_and_gradients`). D1 (``L_q = L_OLS + V``, ``V ≥ 0``) is checked on
   every minibatch.
3. **Check** every ``g`` steps on the fixed probe (:func:`reference.growth_phases.growth_check`).

:func:`init_state` and :func:`train_step` are pure functions of frozen values; :func:`train` composes
them with the growth phases.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Protocol, SupportsFloat, TypeAlias, TypeVar, runtime_checkable

import numpy as np
from jaxtyping import Float64, Int64
from numpy.typing import NDArray

from reference._arrays import F64Array, arr, check_rng, f64
from reference.backward import loss_and_gradients
from reference.data import SequenceDataset
from reference.growth_phases import Context, TrainerState, calibrate, count_kind, growth_check, unit_vector
from reference.growth_statistics import Probe
from reference.incrt.controller import EventKind, GrowthEvent, initial_state
from reference.invariants.ddcl import d1_decomposition
from reference.model import LayerConfig, ModelParams, check_params, forward, init_params
from reference.optim import SGD, AdamState, SGDState
from reference.run_record import (
    EVENT_TRAIN_STEP,
    LOSS_FIELDS,
    Architecture,
    CheckRecord,
    Evaluation,
    InvariantRecord,
    LossTrace,
    RunRecord,
)
from reference.surgery import flatten, unflatten
from reference.train_config import OptState, TrainConfig, make_optimizer


@dataclass(frozen=True)
class ProgressInfo:
    """What the optional progress callback of :func:`train` receives after every step."""

    step: int
    steps: int
    L: float
    L_task: float
    n_heads: int
    n_prototypes: int
    lam_max: float | None
    theta: float
    violations: int = 0  # invariant checks that failed so far in the run


ProgressFn: TypeAlias = Callable[[ProgressInfo], None]


# ==================================================================================================
# Initialisation and calibration
# ==================================================================================================


def init_state(layer_cfg: LayerConfig, train_cfg: TrainConfig, *, rng: np.random.Generator) -> TrainerState:
    """One head, ``K_max`` prototypes, fresh optimiser state, nothing captured, random tracker vectors."""
    params = check_params(init_params(layer_cfg, rng=rng), layer_cfg)
    d = layer_cfg.d
    return TrainerState(
        params=params,
        opt_state=make_optimizer(train_cfg).init_state(),
        growth=initial_state(d, layer_cfg.K_max),
        step=0,
        ranks=(0,),
        w_top=unit_vector(arr(rng.standard_normal(d))),
        w_bottom=unit_vector(arr(rng.standard_normal(d))),
    )


# ==================================================================================================
# One training step (D1 on the minibatch)
# ==================================================================================================


def train_step(
    ctx: Context, state: TrainerState, x: Float64[np.ndarray, "B T d_in"], labels: Int64[np.ndarray, " B"]
) -> tuple[TrainerState, dict[str, float], tuple[InvariantRecord, ...]]:
    """One optimiser step on ``L = L_task + λ_q L_q``; returns the new state, the losses at the old
    parameters (the decomposition ``L_OLS, V, F, H̄`` too) and D1 checked on this minibatch."""
    cache, grads = loss_and_gradients(state.params, ctx.layer_cfg, x, labels)
    step = state.step + 1
    records: tuple[InvariantRecord, ...] = ()
    if ctx.train_cfg.check_invariants:
        d1 = d1_decomposition(Y=cache.tokens(), P=state.params.P, Q=cache.Q)
        records = tuple(InvariantRecord(step, EVENT_TRAIN_STEP, r) for r in d1)
    new_flat, opt_state = _optimizer_step(ctx, state.opt_state, flatten(state.params), grads)
    params = unflatten(new_flat, like=state.params)
    losses = {name: float(getattr(cache, name)) for name in LOSS_FIELDS}
    return replace(state, params=params, opt_state=opt_state, step=step), losses, records


def _optimizer_step(
    ctx: Context, opt_state: OptState, params: Mapping[str, F64Array], grads: Mapping[str, F64Array]
) -> tuple[dict[str, F64Array], OptState]:
    opt = ctx.optimizer
    if isinstance(opt, SGD):
        if not isinstance(opt_state, SGDState):
            raise TypeError(f"opt_state: SGD needs SGDState, got {type(opt_state).__name__}")
        return opt.step(opt_state, params, grads)
    if not isinstance(opt_state, AdamState):
        raise TypeError(f"opt_state: Adam needs AdamState, got {type(opt_state).__name__}")
    return opt.step(opt_state, params, grads)


# ==================================================================================================
# Evaluation
# ==================================================================================================


def evaluate(
    params: ModelParams, cfg: LayerConfig, x: Float64[np.ndarray, "B T d_in"], labels: Int64[np.ndarray, " B"]
) -> tuple[float, float]:
    """``(accuracy, L_task)`` of the layer on a labelled set (argmax of the logits)."""
    cache = forward(params, cfg, x, labels)
    pred = np.argmax(cache.logits, axis=1)
    return f64(np.mean(pred == labels)), cache.L_task


def _evaluation(params: ModelParams, cfg: LayerConfig, data: SequenceDataset, step: int) -> Evaluation:
    tr_acc, tr_L = evaluate(params, cfg, data.x_train, data.labels_train)
    te_acc, te_L = evaluate(params, cfg, data.x_test, data.labels_test)
    return Evaluation(step, tr_acc, te_acc, tr_L, te_L)


# ==================================================================================================
# The run record
# ==================================================================================================


# ==================================================================================================
# The run
# ==================================================================================================


def _check_dataset(dataset: object, layer_cfg: LayerConfig, train_cfg: TrainConfig) -> SequenceDataset:
    if not isinstance(dataset, SequenceDataset):
        raise TypeError(f"dataset: expected reference.data.SequenceDataset, got {type(dataset).__name__}")
    if not isinstance(layer_cfg, LayerConfig):
        raise TypeError(f"layer_cfg: expected LayerConfig, got {type(layer_cfg).__name__}")
    if not isinstance(train_cfg, TrainConfig):
        raise TypeError(f"train_cfg: expected TrainConfig, got {type(train_cfg).__name__}")
    for name, have, want in (
        ("seq_len", layer_cfg.seq_len, dataset.seq_len),
        ("d_in", layer_cfg.d_in, dataset.d_in),
        ("n_classes", layer_cfg.n_classes, dataset.n_classes),
    ):
        if have != want:
            raise ValueError(f"layer_cfg.{name}: is {have}, but the dataset {dataset.name!r} has {want}")
    n = dataset.x_train.shape[0]
    for name in ("batch_size", "probe_size"):
        if getattr(train_cfg, name) > n:
            raise ValueError(
                f"TrainConfig.{name}: {getattr(train_cfg, name)} exceeds the {n} training sequences "
                "(drawn without replacement)"
            )
    return dataset


def _probe(data: SequenceDataset, size: int, rng: np.random.Generator) -> Probe:
    idx = rng.choice(data.x_train.shape[0], size=size, replace=False)
    return Probe(x=arr(data.x_train[idx]), labels=data.labels_train[idx])


EngineState = TypeVar("EngineState")


@runtime_checkable
class Engine(Protocol[EngineState]):
    """What :func:`run` needs from an engine: a training step, a growth check and a view of its state
    in the reference's terms. The loop, the random draws, the thresholds and the record are shared,
    so two engines given the same ``rng`` see the same minibatches, probes and births and write the
    same :class:`RunRecord` schema (``accelerated.trainer`` is the other engine)."""

    def start(self, ctx: Context, state: TrainerState) -> EngineState: ...

    def step(
        self, ctx: Context, es: EngineState, x: F64Array, labels: NDArray[np.int64]
    ) -> tuple[EngineState, Mapping[str, SupportsFloat], tuple[InvariantRecord, ...]]:
        """One optimiser step. The losses may be device scalars: :func:`run` reads them with ``float``
        only at the end of the run (and at every step when it has a ``progress`` callback)."""
        ...

    def check(
        self, ctx: Context, es: EngineState, probe: Probe
    ) -> tuple[EngineState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]: ...

    def counts(self, es: EngineState) -> tuple[int, int, int]:
        """``(step, active heads, active prototypes)``."""
        ...

    def reference_state(self, es: EngineState) -> TrainerState: ...

    def evaluate(self, es: EngineState, cfg: LayerConfig, data: SequenceDataset, step: int) -> Evaluation: ...


class ReferenceEngine:
    """The reference itself as an :class:`Engine`: :func:`train_step` and
    :func:`reference.growth_phases.growth_check` on a :class:`TrainerState`."""

    def start(self, ctx: Context, state: TrainerState) -> TrainerState:
        return state

    def step(
        self, ctx: Context, es: TrainerState, x: F64Array, labels: NDArray[np.int64]
    ) -> tuple[TrainerState, dict[str, float], tuple[InvariantRecord, ...]]:
        return train_step(ctx, es, x, labels)

    def check(
        self, ctx: Context, es: TrainerState, probe: Probe
    ) -> tuple[TrainerState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
        return growth_check(ctx, es, probe)

    def counts(self, es: TrainerState) -> tuple[int, int, int]:
        return es.step, len(es.params.heads), es.params.P.shape[1]

    def reference_state(self, es: TrainerState) -> TrainerState:
        return es

    def evaluate(self, es: TrainerState, cfg: LayerConfig, data: SequenceDataset, step: int) -> Evaluation:
        return _evaluation(es.params, cfg, data, step)


def train(
    dataset: SequenceDataset,
    layer_cfg: LayerConfig,
    train_cfg: TrainConfig,
    *,
    rng: np.random.Generator,
    progress: ProgressFn | None = None,
) -> RunRecord:
    """Train one DDCL-INCRT layer with the growth rule on the reference engine; see :func:`run`."""
    return run(dataset, layer_cfg, train_cfg, rng=rng, engine=ReferenceEngine(), progress=progress)


def run(
    dataset: SequenceDataset,
    layer_cfg: LayerConfig,
    train_cfg: TrainConfig,
    *,
    rng: np.random.Generator,
    engine: Engine[EngineState],
    progress: ProgressFn | None = None,
) -> RunRecord:
    """Train one DDCL-INCRT layer with the growth rule on ``engine`` and return its :class:`RunRecord`.

    ``rng`` draws the initial parameters, the tracker starts, the probe, the calibration probes and
    the minibatches (in that order); births are seeded by ``train_cfg.seed``
    (:func:`reference.growth_phases.birth_rng`). Pure apart from ``progress``, which is called after
    every step, and the wall-clock time recorded.
    """
    data = _check_dataset(dataset, layer_cfg, train_cfg)
    check_rng(rng)
    t0 = time.perf_counter()
    state = init_state(layer_cfg, train_cfg, rng=rng)
    probe = _probe(data, train_cfg.probe_size, rng)
    calib = [_probe(data, train_cfg.probe_size, rng) for _ in range(train_cfg.calibration_probes)]
    growth_cfg, norms = calibrate(state.params, train_cfg, calib)
    ctx = Context(layer_cfg=layer_cfg, train_cfg=train_cfg, growth_cfg=growth_cfg)
    es = engine.start(ctx, state)

    losses: dict[str, list[SupportsFloat]] = {name: [] for name in LOSS_FIELDS}
    events: list[GrowthEvent] = []
    invariants: list[InvariantRecord] = []
    checks: list[CheckRecord] = []
    evaluations: list[Evaluation] = []
    n_train = data.x_train.shape[0]
    lam_last: float | None = None
    n_violations = 0
    for _ in range(train_cfg.steps):
        idx = rng.choice(n_train, size=train_cfg.batch_size, replace=False)
        es, step_losses, recs = engine.step(ctx, es, arr(data.x_train[idx]), data.labels_train[idx])
        for name in LOSS_FIELDS:
            losses[name].append(step_losses[name])
        invariants.extend(recs)
        n_violations += sum(1 for r in recs if not r.result.holds)
        step = engine.counts(es)[0]
        if step % train_cfg.check_every == 0:
            es, rec, evs, recs = engine.check(ctx, es, probe)
            checks.append(rec)
            events.extend(evs)
            invariants.extend(recs)
            n_violations += sum(1 for r in recs if not r.result.holds)
            lam_last = rec.lam_max
        if train_cfg.eval_every and step % train_cfg.eval_every == 0 and step < train_cfg.steps:
            evaluations.append(engine.evaluate(es, layer_cfg, data, step))
        if progress is not None:
            _, n_heads, n_prototypes = engine.counts(es)
            progress(
                ProgressInfo(
                    step=step,
                    steps=train_cfg.steps,
                    L=float(step_losses["L"]),
                    L_task=float(step_losses["L_task"]),
                    n_heads=n_heads,
                    n_prototypes=n_prototypes,
                    lam_max=lam_last,
                    theta=growth_cfg.theta,
                    violations=n_violations,
                )
            )
    final = engine.reference_state(es)
    evaluations.append(engine.evaluate(es, layer_cfg, data, final.step))
    params = final.params
    arch = Architecture(
        head_ids=tuple(sorted(params.heads)),
        n_heads=len(params.heads),
        prototype_ids=tuple(params.prototype_ids),
        n_prototypes=params.P.shape[1],
        births=count_kind(events, EventKind.BIRTH),
        head_prunes=count_kind(events, EventKind.HEAD_PRUNE),
        prototype_prunes=count_kind(events, EventKind.PROTOTYPE_PRUNE),
        captured_rank=final.growth.m,
    )
    return RunRecord(
        dataset=data.name,
        dataset_meta=MappingProxyType(dict(data.meta)),
        layer_config=layer_cfg,
        train_config=train_cfg,
        growth_config=growth_cfg,
        calibration_norms=norms,
        losses=LossTrace(**{name: tuple(float(x) for x in v) for name, v in losses.items()}),
        evaluations=tuple(evaluations),
        events=tuple(events),
        invariants=tuple(invariants),
        checks=tuple(checks),
        architecture=arch,
        final_params=params,
        Q_cap=final.growth.Q_cap,
        wall_time_s=time.perf_counter() - t0,
    )


__all__ = [
    "Engine",
    "EngineState",
    "ProgressFn",
    "ProgressInfo",
    "ReferenceEngine",
    "evaluate",
    "init_state",
    "run",
    "train",
    "train_step",
]
