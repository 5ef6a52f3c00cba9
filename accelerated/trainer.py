"""Training on the accelerated engine: :func:`training.trainer.run` with :class:`AcceleratedEngine`.

The loop, the random draws (minibatches, probe, calibration probes, tracker starts, births), the
thresholds and the :class:`training.record.RunRecord` it writes are the reference's. On the
device: the training step (the stacked-heads loss of :mod:`accelerated.step`, compiled or eager,
autograd gradients and the optimiser of :mod:`accelerated.optim`) and the growth
check's statistics and trackers (:mod:`accelerated.growth_phases`), whose decisions are the
reference's pure functions of those statistics.

Host synchronisation: none on a step without a check, unless ``check_invariants`` is on (D1 is then
checked at every step on a host copy of ``Y``, ``P``, ``Q``) or a ``progress`` callback is given
(it is passed the step's loss as a float). The step's losses are kept as device scalars and read
once, when the run ends.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from accelerated import backward as acc_backward
from accelerated import optim as acc_optim
from accelerated.growth_phases import AcceleratedState, as_float64, growth_check
from accelerated.model import SUPPORTED_DTYPES, ModelParams, check_device, check_dtype, forward
from accelerated.step import StepFunction, flat_args, reported_terms, stacked_loss
from reference._arrays import F64Array, arr
from reference.claims.live import watched
from reference.growth_phases import Context, TrainerState
from reference.growth_statistics import Probe
from reference.incrt.controller import GrowthEvent
from reference.invariants.ddcl import d1_decomposition
from reference.log import EVENT_TRAIN_STEP, CheckRecord, Evaluation, InvariantRecord
from reference.model import LayerConfig
from reference.train_config import TrainConfig
from training.checkpoint import CheckpointPolicy
from training.data import SequenceDataset
from training.record import RunRecord
from training.trainer import ProgressFn, run


def with_leaves(params: ModelParams, stored: Mapping[str, Tensor]) -> ModelParams:
    """``params`` with every stored tensor replaced by ``stored[name]`` (names of
    :func:`accelerated.backward.leaves`: the heads stacked) as a fresh leaf that requires grad."""

    def leaf(name: str) -> Tensor:
        return stored[name].detach().requires_grad_(True)

    heads = params.heads.map(lambda f, _: leaf(f"heads.{f}"))
    return replace(
        params, W_in=leaf("W_in"), E_pos=leaf("E_pos"), heads=heads, P=leaf("P"), W_c=leaf("W_c"), b_c=leaf("b_c")
    )


def check_dtype_ranges(cfg: LayerConfig, state: TrainerState, dtype: torch.dtype) -> None:
    """Refuse temperatures outside what training in ``dtype`` represents (the reference validated them
    for float64): ``T_P`` at least the dtype's smallest normal number, and every log-temperature
    ``|s| ≤ −log(tiny)`` (87.3 in float32) so that ``τ`` and ``1/τ`` are finite normal numbers of the
    dtype; see docs/tolerances.md, 'Trustworthy ranges'."""
    if not isinstance(cfg, LayerConfig):
        raise TypeError(f"cfg: expected reference.model.LayerConfig, got {type(cfg).__name__}")
    if not isinstance(state, TrainerState):
        raise TypeError(f"state: expected reference.growth_phases.TrainerState, got {type(state).__name__}")
    info = torch.finfo(check_dtype(dtype))
    if info.tiny > cfg.T_P:
        raise ValueError(
            f"T_P: {cfg.T_P!r} is below the smallest normal {dtype} ({info.tiny:.3g}); train in float64 or raise T_P"
        )
    s_max = -math.log(info.tiny)
    named = [("s_init", cfg.s_init)] + [(f"params.heads[{h}].s", float(p.s)) for h, p in state.params.heads.items()]
    for name, s in named:
        if abs(s) > s_max:
            raise ValueError(
                f"{name}: a log-temperature of {s!r} overflows {dtype} (|s| must be <= {s_max:.4f}); "
                "train in float64 or rescale the heads"
            )


def log_temperature_max(dtype: torch.dtype) -> float:
    """``−log(tiny)`` of ``dtype``: ``|s|`` at most this keeps ``τ = exp(s)`` and ``1/τ`` finite normal
    numbers of the dtype (708.3964 in float64, the reference's bound; 87.3365 in float32)."""
    return -math.log(torch.finfo(dtype).tiny)


def divergence(
    params: ModelParams, dtype: torch.dtype, step: int, window: int
) -> ValueError | FloatingPointError | None:
    """The error to refuse parameters that training has taken out of range with, naming the parameter
    (``None`` when they are in range): a head's log-temperature ``|s|`` above :func:`log_temperature_max`
    (``ValueError``, as the reference's :class:`reference.model.HeadParams` refuses it at the step that
    produced it), or a non-finite parameter (``FloatingPointError``).

    The reference's optimiser checks every step; here a step has no host synchronisation, so this runs
    where the engine synchronises anyway (the growth check, and D1's host copy when invariants are
    checked): a divergence is reported within ``window`` steps of where it happened, and no check,
    event or record is computed from it. The temperatures come first: a log-temperature out of range
    makes the attention NaN at the next step, which then spreads to every parameter, ``s`` included
    (so a NaN ``s`` is out of range too: on some CPUs the step after ``|s| > s_max`` is still finite and
    the one after it turns ``s`` into NaN)."""
    s_max = log_temperature_max(dtype)
    s = params.heads.s.detach()
    out_of_range = (~(s.abs() <= s_max)).tolist()
    if any(out_of_range):
        hid, value = next((h, v) for h, v, bad in zip(params.heads, s.tolist(), out_of_range, strict=True) if bad)
        return ValueError(
            f"params.heads[{hid}].s: a log-temperature must satisfy |s| <= {s_max:.4f} in {dtype} (so that exp(s) "
            f"and exp(-s) are finite normal numbers), got {value!r} after step {step} (training diverged within "
            f"the last {window} steps; lower the temperatures' learning rate)"
        )
    flat = acc_backward.flatten(params)
    finite = torch.stack([torch.isfinite(t).all() for t in flat.values()])
    if not bool(finite.all()):
        name = next(n for n, ok in zip(flat, finite.tolist(), strict=True) if not ok)
        return FloatingPointError(
            f"params[{name!r}]: not finite after step {step} (training diverged within the last {window} steps; "
            "lower the learning rate, or train in float64)"
        )
    return None


@dataclass(frozen=True)
class AcceleratedEngine:
    """The :class:`training.trainer.Engine` on PyTorch, training in ``dtype`` on ``device``; the step's
    loss is :class:`accelerated.step.StepFunction` (``torch.compile``d when built with ``compile=True``)."""

    dtype: torch.dtype = torch.float64
    device: str = "cpu"
    loss: StepFunction = field(default_factory=StepFunction, compare=False)

    def __post_init__(self) -> None:
        check_dtype(self.dtype)
        check_device(self.device)
        if not callable(self.loss):
            raise TypeError(f"loss: expected a StepFunction, got {type(self.loss).__name__}")

    @property
    def name(self) -> str:
        """The engine as a checkpoint names it: a run resumes bit for bit on the same dtype and device type."""
        return f"accelerated:{str(self.dtype).removeprefix('torch.')}:{torch.device(self.device).type}"

    def start(self, ctx: Context, state: TrainerState) -> AcceleratedState:
        check_dtype_ranges(ctx.layer_cfg, state, self.dtype)
        params = acc_backward.from_reference(state.params, dtype=self.dtype, device=self.device)

        def dev(a: np.ndarray) -> Tensor:
            return torch.tensor(a, dtype=torch.float64, device=self.device)

        return AcceleratedState(
            params=params,
            opt_state=self.optimizer(ctx.train_cfg).state_from_reference(
                state.opt_state, dtype=self.dtype, device=self.device, heads=params.heads
            ),
            growth=state.growth,
            Q_cap=dev(state.growth.Q_cap),
            step=state.step,
            ranks=state.ranks,
            w_top=dev(state.w_top),
            w_bottom=dev(state.w_bottom),
        )

    def optimizer(self, cfg: TrainConfig) -> acc_optim.Adam | acc_optim.SGD:
        return acc_optim.SGD(lr=cfg.lr) if cfg.optimizer == "sgd" else acc_optim.Adam(lr=cfg.lr)

    def _tensor(self, x: F64Array) -> Tensor:
        return torch.tensor(x, dtype=self.dtype, device=self.device)

    def step(
        self, ctx: Context, es: AcceleratedState, x: F64Array, labels: NDArray[np.int64]
    ) -> tuple[AcceleratedState, Mapping[str, Tensor], tuple[InvariantRecord, ...]]:
        grads, losses, Y, Q = self.gradients(ctx, es, x, labels)
        records: tuple[InvariantRecord, ...] = ()
        if ctx.train_cfg.check_invariants:
            records = self._d1(es.params, x, labels, Y, Q, ctx.layer_cfg, es.step + 1)
        return self.apply_gradients(ctx, es, grads), losses, records

    def gradients(
        self, ctx: Context, es: AcceleratedState, x: F64Array, labels: NDArray[np.int64]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor, Tensor]:
        """``(∂L/∂θ by stored name, the loss terms, Y, Q)`` at ``es.params`` on ``(x, labels)``, no update;
        the gradients are keyed like :func:`accelerated.backward.leaves` (one per stacked head tensor,
        not per head). The seam of :class:`accelerated.distributed.DistributedEngine`, which reduces
        the gradients of its shard across processes before :meth:`apply_gradients`."""
        cfg = ctx.layer_cfg
        stored = acc_backward.leaves(es.params)
        L, L_task, L_q, Y, Q = self.loss(
            es.params, self._tensor(x), torch.tensor(labels, device=self.device), cfg.T_P, cfg.lambda_q
        )
        grads = dict(zip(stored, torch.autograd.grad(L, list(stored.values())), strict=True))
        losses = {"L": L.detach(), "L_task": L_task.detach(), "L_q": L_q.detach()}
        losses.update(reported_terms(Y, es.params.P, Q, cfg.T_P))
        return grads, losses, Y, Q

    def apply_gradients(self, ctx: Context, es: AcceleratedState, grads: Mapping[str, Tensor]) -> AcceleratedState:
        """One optimiser step from ``grads``; the step count advances by one."""
        opt = es.opt_state
        if isinstance(opt, acc_optim.AdamState) and opt.heads is not None and opt.heads.ids != es.params.heads.ids:
            # rows of the stacked moments are matched to heads by position: a birth or prune applied to the
            # parameters but not to the state would give heads each other's moments, silently
            raise ValueError(f"opt_state: moment rows are for heads {opt.heads.ids}, params have {es.params.heads.ids}")
        stored = acc_backward.leaves(es.params)
        new, opt_state = self.optimizer(ctx.train_cfg).step(es.opt_state, stored, dict(grads))
        return replace(es, params=with_leaves(es.params, new), opt_state=opt_state, step=es.step + 1)

    def _d1(
        self,
        params: ModelParams,
        x: F64Array,
        labels: NDArray[np.int64],
        Y: Tensor,
        Q: Tensor,
        cfg: LayerConfig,
        step: int,
    ) -> tuple[InvariantRecord, ...]:
        """D1 on the step's ``Y``, ``P``, ``Q`` (host float64 copies). In a lower training precision the
        step's own ``Q`` is row-stochastic only to that precision, below what the float64 invariant
        accepts; D1 is then checked on a float64 evaluation of the same parameters and minibatch (the
        claim is about the layer at these parameters; the float32 arithmetic itself is covered by the
        differential tests)."""
        P = params.P
        if self.dtype != torch.float64:
            with torch.no_grad():
                p64 = as_float64(params)
                x64 = torch.tensor(x, dtype=torch.float64, device=self.device)
                _, _, _, Y, Q = stacked_loss(
                    *flat_args(p64), x64, torch.tensor(labels, device=self.device), cfg.T_P, cfg.lambda_q
                )
            P = p64.P
        # D1 synchronises with the host anyway: refuse parameters the last step took out of range first,
        # as the reference refuses them at that step (whether this step's tokens are already NaN depends
        # on the CPU's exp near its overflow).
        error = divergence(params, self.dtype, step - 1, 1)
        if error is not None:
            raise error
        Y_, Q_, P_ = (acc_backward.to_host(t) for t in (Y, Q, P))
        evaluated = "float64" if self.dtype == torch.float64 else f"float64 (D1's evaluation of this {self.dtype} run)"
        for name, value in (("Y", Y_), ("Q", Q_)):
            if not np.isfinite(value).all():
                # finite parameters whose layer overflows: the reference's forward refuses the same step
                # ("float64 overflowed inside the layer … the run diverged"); D1's own refusal of a NaN
                # argument would read as a bad input
                raise FloatingPointError(
                    f"{name}: {int(np.size(value) - np.isfinite(value).sum())} non-finite entries at step {step} "
                    f"from finite parameters: they overflow {evaluated} inside the layer (training diverged at the "
                    "last update; lower the learning rate)"
                )
        results = d1_decomposition(Y=Y_, P=P_, Q=Q_)
        return watched(results, step=step, event=EVENT_TRAIN_STEP, Q=Q_)

    def check(
        self, ctx: Context, es: AcceleratedState, probe: Probe
    ) -> tuple[AcceleratedState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
        error = divergence(es.params, self.dtype, es.step, ctx.train_cfg.check_every)
        if error is not None:
            raise error
        return growth_check(ctx, es, probe)

    def counts(self, es: AcceleratedState) -> tuple[int, int, int]:
        return es.step, len(es.params.heads), int(es.params.P.shape[1])

    def reference_state(self, es: AcceleratedState) -> TrainerState:
        return TrainerState(
            params=acc_backward.to_reference(es.params),
            opt_state=es.opt_state.to_reference(),
            growth=es.growth,
            step=es.step,
            ranks=es.ranks,
            w_top=arr(acc_backward.to_host(es.w_top)),
            w_bottom=arr(acc_backward.to_host(es.w_bottom)),
        )

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
    compile: bool = False,
    progress: ProgressFn | None = None,
    checkpoints: CheckpointPolicy | None = None,
) -> RunRecord:
    """:func:`training.trainer.run` on the accelerated engine (same draws, same record schema, same
    checkpoints: :func:`training.trainer.resume` continues one on an engine of the same dtype).

    ``dtype`` is torch.float32 or torch.float64 and ``device`` ``"cpu"`` or a CUDA device this build
    sees; anything else is refused, naming the argument, before any work."""
    if not isinstance(compile, bool):
        raise TypeError(f"compile: expected a bool, got {type(compile).__name__} {compile!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected a callable or None, got {type(progress).__name__}")
    engine = AcceleratedEngine(dtype, device, StepFunction(compile=compile))
    return run(dataset, layer_cfg, train_cfg, rng=rng, engine=engine, progress=progress, checkpoints=checkpoints)


__all__ = [
    "SUPPORTED_DTYPES",
    "AcceleratedEngine",
    "check_device",
    "check_dtype",
    "check_dtype_ranges",
    "divergence",
    "log_temperature_max",
    "train",
    "with_leaves",
]
