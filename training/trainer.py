"""The reference trainer: the layer (:mod:`reference.model`, :mod:`reference.backward`), an optimiser
(:mod:`reference.optim`) and the INCRT growth rule (:mod:`reference.growth_phases`) in one loop, with
every applicable invariant recorded in the :class:`training.record.RunRecord` it returns.

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
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, Protocol, SupportsFloat, TypeAlias, TypeVar, runtime_checkable

import numpy as np
from jaxtyping import Float64, Int64
from numpy.typing import NDArray

from reference._arrays import F64Array, arr, check_rng, f64
from reference.backward import loss_and_gradients
from reference.claims.live import watched
from reference.growth_phases import Context, TrainerState, calibrate, count_kind, growth_check, unit_vector
from reference.growth_statistics import Probe
from reference.incrt.author_code import orthogonalised
from reference.incrt.controller import EventKind, GrowthEvent, initial_state
from reference.invariants.ddcl import d1_decomposition
from reference.log import EVENT_TRAIN_STEP, LOSS_FIELDS, CheckRecord, Evaluation, InvariantRecord, LossTrace
from reference.model import LayerConfig, ModelParams, check_params, forward, init_params
from reference.surgery import flatten, unflatten
from reference.train_config import TrainConfig, make_optimizer
from training.checkpoint import (
    Checkpoint,
    CheckpointPolicy,
    checkpoints_in,
    dataset_fingerprint,
    restore_rng,
    rng_state,
    step_of,
)
from training.data import SequenceDataset
from training.record import Architecture, RunLog, RunRecord


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
    w_top = unit_vector(arr(rng.standard_normal(d)))
    w_bottom = unit_vector(arr(rng.standard_normal(d)))
    if "author_code" in train_cfg.growth_variants:  # u₋ ⟂ u₊ at the start (the author's LayerState)
        w_bottom = orthogonalised(w_bottom, w_top)
    return TrainerState(
        params=params,
        opt_state=make_optimizer(train_cfg).init_state(),
        growth=initial_state(d, layer_cfg.K_max),
        step=0,
        ranks=(0,),
        w_top=w_top,
        w_bottom=w_bottom,
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
        records = watched(d1, step=step, event=EVENT_TRAIN_STEP, Q=cache.Q)
    new_flat, opt_state = ctx.optimizer.step(state.opt_state, flatten(state.params), grads)
    params = unflatten(new_flat, like=state.params)
    losses = {name: float(getattr(cache, name)) for name in LOSS_FIELDS}
    return replace(state, params=params, opt_state=opt_state, step=step), losses, records


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
        raise TypeError(f"dataset: expected training.data.SequenceDataset, got {type(dataset).__name__}")
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

    name = "reference"

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


@dataclass(frozen=True)
class Advanced(Generic[EngineState]):
    """One step of the loop done: the engine's state after it, the step's losses (before the update),
    the invariants recorded (the step's, then the check's), and the check's record and events when the
    step ended on a growth check."""

    es: EngineState
    step: int
    losses: Mapping[str, SupportsFloat]
    invariants: tuple[InvariantRecord, ...]
    check: CheckRecord | None = None
    events: tuple[GrowthEvent, ...] = ()


def advance(
    engine: Engine[EngineState],
    ctx: Context,
    es: EngineState,
    x: F64Array,
    labels: NDArray[np.int64],
    probe: Probe,
) -> Advanced[EngineState]:
    """The body of every training loop: one optimiser step on ``(x, labels)`` and, when the step count
    is a multiple of ``check_every``, a growth check on ``probe``. :func:`run` draws the minibatches;
    the conformance kit's trajectories give them (:mod:`ddcl_incrt.conformance.trajectory`)."""
    es, losses, recs = engine.step(ctx, es, x, labels)
    step = engine.counts(es)[0]
    if step % ctx.train_cfg.check_every != 0:
        return Advanced(es, step, losses, recs)
    es, rec, events, check_recs = engine.check(ctx, es, probe)
    return Advanced(es, step, losses, recs + check_recs, rec, events)


def train(
    dataset: SequenceDataset,
    layer_cfg: LayerConfig,
    train_cfg: TrainConfig,
    *,
    rng: np.random.Generator,
    progress: ProgressFn | None = None,
    checkpoints: CheckpointPolicy | None = None,
) -> RunRecord:
    """Train one DDCL-INCRT layer with the growth rule on the reference engine; see :func:`run`."""
    return run(
        dataset, layer_cfg, train_cfg, rng=rng, engine=ReferenceEngine(), progress=progress, checkpoints=checkpoints
    )


@dataclass
class _Loop:
    """What the loop carries from step to step besides the engine's state (a checkpoint's contents)."""

    ctx: Context
    calibration_norms: tuple[float, ...]
    probe: Probe
    losses: dict[str, list[SupportsFloat]]
    events: list[GrowthEvent]
    invariants: list[InvariantRecord]
    checks: list[CheckRecord]
    evaluations: list[Evaluation]
    lam_last: float | None = None
    n_violations: int = 0
    elapsed_s: float = 0.0  # wall time of earlier sessions of a resumed run

    def log(self, n_steps: int, lengths: tuple[int, int, int, int] | None = None) -> RunLog:
        """The log of the first ``n_steps`` steps; ``lengths`` (a :class:`_Boundary`'s) cuts the events,
        invariants, checks and evaluations back to that boundary (the lists may hold a step in progress)."""
        n_events, n_invariants, n_checks, n_evaluations = lengths or (None, None, None, None)
        return RunLog(
            losses=LossTrace(**{name: tuple(float(x) for x in v[:n_steps]) for name, v in self.losses.items()}),
            evaluations=tuple(self.evaluations[:n_evaluations]),
            events=tuple(self.events[:n_events]),
            invariants=tuple(self.invariants[:n_invariants]),
            checks=tuple(self.checks[:n_checks]),
        )


@dataclass(frozen=True)
class _Boundary:
    """The loop between two steps: the engine state, the rng state and the lengths of the lists."""

    es: object
    step: int
    rng_state: dict[str, Any] | None  # None when no checkpoint is written (any bit generator may be used)
    lengths: tuple[int, int, int, int]
    lam_last: float | None
    n_violations: int


def run(
    dataset: SequenceDataset,
    layer_cfg: LayerConfig,
    train_cfg: TrainConfig,
    *,
    rng: np.random.Generator,
    engine: Engine[EngineState],
    progress: ProgressFn | None = None,
    checkpoints: CheckpointPolicy | None = None,
) -> RunRecord:
    """Train one DDCL-INCRT layer with the growth rule on ``engine`` and return its :class:`RunRecord`.

    ``rng`` draws the initial parameters, the tracker starts, the probe, the calibration probes and
    the minibatches (in that order); births are seeded by ``train_cfg.seed``
    (:func:`reference.growth_phases.birth_rng`). Pure apart from ``progress``, which is called after
    every step, the checkpoints written by ``checkpoints`` (:class:`training.checkpoint.CheckpointPolicy`)
    and the wall-clock time recorded. :func:`resume` continues from a checkpoint.
    """
    data = _check_dataset(dataset, layer_cfg, train_cfg)
    check_rng(rng)
    t0 = time.perf_counter()
    state = init_state(layer_cfg, train_cfg, rng=rng)
    probe = _probe(data, train_cfg.probe_size, rng)
    calib = [_probe(data, train_cfg.probe_size, rng) for _ in range(train_cfg.calibration_probes)]
    growth_cfg, norms = calibrate(state.params, train_cfg, calib)
    loop = _Loop(
        ctx=Context(layer_cfg=layer_cfg, train_cfg=train_cfg, growth_cfg=growth_cfg),
        calibration_norms=norms,
        probe=probe,
        losses={name: [] for name in LOSS_FIELDS},
        events=[],
        invariants=[],
        checks=[],
        evaluations=[],
    )
    return _loop(data, loop, engine.start(loop.ctx, state), engine, rng, t0, progress, checkpoints)


def resume(
    checkpoint: Checkpoint,
    dataset: SequenceDataset,
    *,
    engine: Engine[EngineState],
    progress: ProgressFn | None = None,
    checkpoints: CheckpointPolicy | None = None,
) -> RunRecord:
    """Continue the run saved in ``checkpoint`` (:meth:`training.checkpoint.Checkpoint.load`) on
    ``dataset`` to its ``train_config.steps``: on the engine that wrote it, the record equals the
    uninterrupted run's, bit for bit on CPU (apart from the wall time)."""
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"checkpoint: expected training.checkpoint.Checkpoint, got {type(checkpoint).__name__}")
    checkpoint.check_resumable(dataset, engine_name(engine))
    ck = checkpoint
    data = _check_dataset(dataset, ck.layer_config, ck.train_config)
    t0 = time.perf_counter()
    log = ck.log
    loop = _Loop(
        ctx=Context(layer_cfg=ck.layer_config, train_cfg=ck.train_config, growth_cfg=ck.growth_config),
        calibration_norms=ck.calibration_norms,
        probe=ck.probe,
        losses={name: list(getattr(log.losses, name)) for name in LOSS_FIELDS},
        events=list(log.events),
        invariants=list(log.invariants),
        checks=list(log.checks),
        evaluations=list(log.evaluations),
        lam_last=ck.lam_last,
        n_violations=ck.n_violations,
        elapsed_s=ck.elapsed_s,
    )
    rng = restore_rng(ck.rng_state)
    return _loop(data, loop, engine.start(loop.ctx, ck.state), engine, rng, t0, progress, checkpoints)


def engine_name(engine: object) -> str:
    """How a checkpoint names the engine that wrote it (its ``name`` attribute, else its class)."""
    name = getattr(engine, "name", None)
    return name if isinstance(name, str) else type(engine).__name__


def _loop(
    data: SequenceDataset,
    loop: _Loop,
    es: EngineState,
    engine: Engine[EngineState],
    rng: np.random.Generator,
    t0: float,
    progress: ProgressFn | None,
    checkpoints: CheckpointPolicy | None,
) -> RunRecord:
    ctx = loop.ctx
    layer_cfg, train_cfg = ctx.layer_cfg, ctx.train_cfg
    n_train = data.x_train.shape[0]
    keep_rng = checkpoints is not None
    if keep_rng:
        rng_state(rng)  # a checkpoint stores the generator's state exactly: refuse one it cannot, up front
    boundary = _boundary(loop, es, engine, rng, keep_rng)
    try:
        while boundary.step < train_cfg.steps:
            idx = rng.choice(n_train, size=train_cfg.batch_size, replace=False)
            done = advance(engine, ctx, es, arr(data.x_train[idx]), data.labels_train[idx], loop.probe)
            es, step_losses, step = done.es, done.losses, done.step
            for name in LOSS_FIELDS:
                loop.losses[name].append(step_losses[name])
            loop.invariants.extend(done.invariants)
            loop.n_violations += sum(1 for r in done.invariants if r.violation)
            if done.check is not None:
                loop.checks.append(done.check)
                loop.events.extend(done.events)
                loop.lam_last = done.check.lam_max
            if train_cfg.eval_every and step % train_cfg.eval_every == 0 and step < train_cfg.steps:
                loop.evaluations.append(engine.evaluate(es, layer_cfg, data, step))
            boundary = _boundary(loop, es, engine, rng, keep_rng)
            if checkpoints is not None and checkpoints.due(step):
                _save(checkpoints, checkpoints.path(step), data, loop, engine, boundary, t0)
                checkpoints.prune(step)
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
                        lam_max=loop.lam_last,
                        theta=ctx.growth_cfg.theta,
                        violations=loop.n_violations,
                    )
                )
    except BaseException as exc:
        if checkpoints is not None and checkpoints.on_interrupt and boundary.step > 0:
            exc.add_note(_checkpoint_on_interrupt(checkpoints, data, loop, engine, boundary, t0, exc))
        raise
    final = engine.reference_state(es)
    loop.evaluations.append(engine.evaluate(es, layer_cfg, data, final.step))
    params = final.params
    arch = Architecture(
        head_ids=tuple(sorted(params.heads)),
        n_heads=len(params.heads),
        prototype_ids=tuple(params.prototype_ids),
        n_prototypes=params.P.shape[1],
        births=count_kind(loop.events, EventKind.BIRTH),
        head_prunes=count_kind(loop.events, EventKind.HEAD_PRUNE),
        prototype_prunes=count_kind(loop.events, EventKind.PROTOTYPE_PRUNE),
        captured_rank=final.growth.m,
    )
    log = loop.log(train_cfg.steps)
    return RunRecord(
        dataset=data.name,
        dataset_meta=MappingProxyType(dict(data.meta)),
        layer_config=layer_cfg,
        train_config=train_cfg,
        growth_config=ctx.growth_cfg,
        calibration_norms=loop.calibration_norms,
        losses=log.losses,
        evaluations=log.evaluations,
        events=log.events,
        invariants=log.invariants,
        checks=log.checks,
        architecture=arch,
        final_params=params,
        Q_cap=final.growth.Q_cap,
        wall_time_s=loop.elapsed_s + time.perf_counter() - t0,
    )


def _boundary(
    loop: _Loop, es: EngineState, engine: Engine[EngineState], rng: np.random.Generator, keep_rng: bool
) -> _Boundary:
    return _Boundary(
        es=es,
        step=engine.counts(es)[0],
        rng_state=rng_state(rng) if keep_rng else None,
        lengths=(len(loop.events), len(loop.invariants), len(loop.checks), len(loop.evaluations)),
        lam_last=loop.lam_last,
        n_violations=loop.n_violations,
    )


def _checkpoint_on_interrupt(
    policy: CheckpointPolicy,
    data: SequenceDataset,
    loop: _Loop,
    engine: Engine[EngineState],
    at: _Boundary,
    t0: float,
    stopped_by: BaseException,
) -> str:
    """Write the checkpoint of the last completed step while the exception ``stopped_by`` propagates;
    returns the note for it. A failure to write (a full disk) is reported in the note, never raised: it
    must not replace the interruption the user caused or the error that stopped the run.

    Only an interruption (Ctrl-C, SIGTERM) is "interrupted" with "(resume from it)", the phrase that makes
    the commands add the ``--resume`` hint: after any other exception (a bug, a full disk) the note says
    what stopped training and where the state is, and resuming would not obviously get past the cause."""
    interrupted = isinstance(stopped_by, KeyboardInterrupt)
    stopped = "training interrupted" if interrupted else f"training stopped by {type(stopped_by).__name__}"
    path = policy.path(at.step)
    try:
        if not path.exists():
            _save(policy, path, data, loop, engine, at, t0)
    except Exception as save_error:  # any failure is reported in the note; the original exception propagates
        try:
            # only an earlier step's: the folder may hold later steps of an earlier, longer run into it
            earlier = [p for p in checkpoints_in(policy.directory) if step_of(p) < at.step]
        except OSError:
            earlier = []
        fallback = f"; the newest earlier checkpoint is {earlier[-1]}" if earlier else "; no earlier checkpoint exists"
        return (
            f"{stopped} after step {at.step}, and writing its checkpoint {path} failed "
            f"({type(save_error).__name__}: {save_error}){fallback}"
        )
    if interrupted:
        return f"{stopped}: the state after step {at.step} is in {path} (resume from it)"
    return f"{stopped}: the state after step {at.step} is in {path}"


def _save(
    policy: CheckpointPolicy,
    path: Path,
    data: SequenceDataset,
    loop: _Loop,
    engine: Engine[EngineState],
    at: _Boundary,
    t0: float,
) -> Path:
    """Write the checkpoint of the loop at the boundary ``at`` (the lists are cut back to it)."""
    assert at.rng_state is not None  # kept whenever a policy is given
    log = loop.log(at.step, at.lengths)
    ctx = loop.ctx
    return Checkpoint(
        layer_config=ctx.layer_cfg,
        train_config=ctx.train_cfg,
        growth_config=ctx.growth_cfg,
        calibration_norms=loop.calibration_norms,
        dataset=data.name,
        dataset_fingerprint=dataset_fingerprint(data),
        engine=engine_name(engine),
        state=engine.reference_state(at.es),  # type: ignore[arg-type]  # at.es is this engine's state
        probe=loop.probe,
        rng_state=at.rng_state,
        log=log,
        n_violations=at.n_violations,
        lam_last=at.lam_last,
        elapsed_s=loop.elapsed_s + time.perf_counter() - t0,
    ).save(path)


__all__ = [
    "Advanced",
    "Engine",
    "EngineState",
    "ProgressFn",
    "ProgressInfo",
    "ReferenceEngine",
    "advance",
    "engine_name",
    "evaluate",
    "init_state",
    "resume",
    "run",
    "train",
    "train_step",
]
