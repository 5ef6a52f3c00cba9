"""Training on the accelerated engine: :func:`reference.trainer.run` with :class:`AcceleratedEngine`.

The loop, the random draws (minibatches, probe, calibration probes, tracker starts, births), the
thresholds and the :class:`reference.run_record.RunRecord` it writes are the reference's; what runs
on the device is the training step: the stacked-heads forward, autograd gradients and the optimiser
(:mod:`accelerated.model`, :mod:`accelerated.backward`, :mod:`accelerated.optim`).

Interim, and said plainly: at a growth check (every ``g`` steps) the parameters are copied to the host
and the reference's :func:`reference.growth_phases.growth_check` takes the statistics, the decisions
and every invariant on them; births, prunes and prototype prunes are then applied to the device
parameters and the optimiser state (existing moments untouched, a pruned head's dropped, ``P``'s
column removed). The statistics in torch exist (:mod:`accelerated.growth_statistics`) but do not
drive the checks yet. D1 is checked at every step on a host copy of ``Y``, ``P``, ``Q`` when
``check_invariants`` is on (a host synchronisation per step; switch it off for speed).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from accelerated import backward as acc_backward
from accelerated import optim as acc_optim
from accelerated.model import HeadParams, ModelParams, forward
from reference._arrays import F64Array, arr
from reference.data import SequenceDataset
from reference.growth_phases import Context, TrainerState, growth_check
from reference.growth_statistics import Probe
from reference.incrt.controller import EventKind, GrowthEvent
from reference.invariants.ddcl import d1_decomposition
from reference.model import LayerConfig
from reference.optim import SGDState
from reference.run_record import EVENT_TRAIN_STEP, LOSS_FIELDS, CheckRecord, Evaluation, InvariantRecord, RunRecord
from reference.surgery import HEAD_PARAM_NAMES, head_param_name
from reference.train_config import TrainConfig
from reference.trainer import ProgressFn, run


@dataclass(frozen=True, eq=False)
class AcceleratedState:
    """The device parameters and optimiser state, and the reference-form rest of the run's state
    (growth state, ranks, tracker vectors, step count) that the checks read and write."""

    params: ModelParams
    opt_state: acc_optim.AdamState | acc_optim.SGDState
    host: TrainerState  # params/opt_state fields are stale between checks; growth, ranks, w_*, step are live


def _with_flat(params: ModelParams, flat: dict[str, Tensor]) -> ModelParams:
    """``params`` with every tensor replaced by ``flat[name]`` as a fresh leaf that requires grad."""

    def leaf(name: str) -> Tensor:
        return flat[name].detach().requires_grad_(True)

    heads = {hid: HeadParams(**{f: leaf(head_param_name(hid, f)) for f in HEAD_PARAM_NAMES}) for hid in params.heads}
    return replace(
        params, W_in=leaf("W_in"), E_pos=leaf("E_pos"), heads=heads, P=leaf("P"), W_c=leaf("W_c"), b_c=leaf("b_c")
    )


@dataclass(frozen=True)
class AcceleratedEngine:
    """The :class:`reference.trainer.Engine` on PyTorch, in ``dtype`` on ``device``."""

    dtype: torch.dtype = torch.float64
    device: str = "cpu"

    def start(self, ctx: Context, state: TrainerState) -> AcceleratedState:
        params = acc_backward.from_reference(state.params, dtype=self.dtype, device=self.device)
        opt = self._optimizer(ctx.train_cfg)
        return AcceleratedState(params=params, opt_state=opt.init_state(), host=state)

    def _optimizer(self, cfg: TrainConfig) -> acc_optim.Adam | acc_optim.SGD:
        return acc_optim.SGD(lr=cfg.lr) if cfg.optimizer == "sgd" else acc_optim.Adam(lr=cfg.lr)

    def _optimizer_step(
        self,
        cfg: TrainConfig,
        state: acc_optim.AdamState | acc_optim.SGDState,
        params: dict[str, Tensor],
        grads: dict[str, Tensor],
    ) -> tuple[dict[str, Tensor], acc_optim.AdamState | acc_optim.SGDState]:
        opt = self._optimizer(cfg)
        if isinstance(opt, acc_optim.SGD) and isinstance(state, acc_optim.SGDState):
            return opt.step(state, params, grads)
        if isinstance(opt, acc_optim.Adam) and isinstance(state, acc_optim.AdamState):
            return opt.step(state, params, grads)
        raise TypeError(f"opt_state: {type(state).__name__} does not belong to {type(opt).__name__}")

    def _tensor(self, x: F64Array) -> Tensor:
        return torch.tensor(x, dtype=self.dtype, device=self.device)

    def step(
        self, ctx: Context, es: AcceleratedState, x: F64Array, labels: NDArray[np.int64]
    ) -> tuple[AcceleratedState, dict[str, float], tuple[InvariantRecord, ...]]:
        cache, grads = acc_backward.loss_and_gradients(
            es.params, ctx.layer_cfg, self._tensor(x), torch.tensor(labels, device=self.device)
        )
        step = es.host.step + 1
        records: tuple[InvariantRecord, ...] = ()
        if ctx.train_cfg.check_invariants:
            Y = cache.tokens().detach().to("cpu", torch.float64).numpy()
            Q = cache.Q.detach().to("cpu", torch.float64).numpy()
            P = es.params.P.detach().to("cpu", torch.float64).numpy()
            records = tuple(InvariantRecord(step, EVENT_TRAIN_STEP, r) for r in d1_decomposition(Y=Y, P=P, Q=Q))
        flat = acc_backward.flatten(es.params)
        new_flat, opt_state = self._optimizer_step(ctx.train_cfg, es.opt_state, flat, grads)
        losses = {name: float(getattr(cache, name).detach()) for name in LOSS_FIELDS}
        host = replace(es.host, step=step)
        return AcceleratedState(params=_with_flat(es.params, new_flat), opt_state=opt_state, host=host), losses, records

    def check(
        self, ctx: Context, es: AcceleratedState, probe: Probe
    ) -> tuple[AcceleratedState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
        before = acc_backward.to_reference(es.params)
        # The reference's phases edit an optimiser state only to drop or resize entries; SGDState passes
        # through them untouched, and the same edits are applied to the device state below.
        host_in = replace(es.host, params=before, opt_state=SGDState())
        host_out, record, events, invariants = growth_check(ctx, host_in, probe)
        opt_state = es.opt_state
        ids = list(before.prototype_ids)
        for e in events:
            if e.kind is EventKind.HEAD_PRUNE and e.head_id is not None and isinstance(opt_state, acc_optim.AdamState):
                gone = {head_param_name(e.head_id, f) for f in HEAD_PARAM_NAMES}
                opt_state = acc_optim.AdamState({k: v for k, v in opt_state.moments.items() if k not in gone})
            if e.kind is EventKind.PROTOTYPE_PRUNE and e.prototype_id is not None:
                if isinstance(opt_state, acc_optim.AdamState):
                    opt_state = acc_optim.remove_state_column(opt_state, "P", ids.index(e.prototype_id))
                ids.remove(e.prototype_id)
        params = acc_backward.from_reference(host_out.params, dtype=self.dtype, device=self.device)
        return AcceleratedState(params=params, opt_state=opt_state, host=host_out), record, events, invariants

    def counts(self, es: AcceleratedState) -> tuple[int, int, int]:
        return es.host.step, len(es.params.heads), int(es.params.P.shape[1])

    def reference_state(self, es: AcceleratedState) -> TrainerState:
        return replace(es.host, params=acc_backward.to_reference(es.params), opt_state=SGDState())

    def evaluate(self, es: AcceleratedState, cfg: LayerConfig, data: SequenceDataset, step: int) -> Evaluation:
        out = []
        with torch.no_grad():
            for x, labels in ((data.x_train, data.labels_train), (data.x_test, data.labels_test)):
                cache = forward(es.params, cfg, self._tensor(arr(x)), torch.tensor(labels, device=self.device))
                pred = cache.logits.argmax(dim=1).cpu().numpy()
                out.append((float(np.mean(pred == labels)), float(cache.L_task)))
        (tr_acc, tr_L), (te_acc, te_L) = out
        return Evaluation(step, tr_acc, te_acc, tr_L, te_L)


def train(
    dataset: SequenceDataset,
    layer_cfg: LayerConfig,
    train_cfg: TrainConfig,
    *,
    rng: np.random.Generator,
    dtype: torch.dtype = torch.float64,
    device: str = "cpu",
    progress: ProgressFn | None = None,
) -> RunRecord:
    """:func:`reference.trainer.run` on the accelerated engine (same draws, same record schema)."""
    return run(dataset, layer_cfg, train_cfg, rng=rng, engine=AcceleratedEngine(dtype, device), progress=progress)


__all__ = ["AcceleratedEngine", "AcceleratedState", "train"]
