"""Data-parallel training of the accelerated layer across processes (``torch.distributed``).

:class:`DistributedEngine` is the :class:`training.trainer.Engine` that :func:`training.trainer.run`
drives on every rank. The loop, its random draws and its record are unchanged: every rank runs the
same loop from the same seed, so every rank draws the same global minibatch, the same probe and the
same births. What the engine adds (docs/distributed.md):

* **Sharding.** Rank ``r`` of ``W`` takes the contiguous ``r``-th of ``W`` equal slices of the global
  minibatch (:func:`shard`; a batch size not divisible by ``W`` is refused).
* **All-reduce.** Each rank computes the gradients and loss terms of its shard; one ``all_reduce``
  (sum, then ``/W``) of one buffer holding all of them gives every rank the global mean. Every loss
  term is a mean over sequences or tokens, and the shards are equal, so the mean of the shard means
  is the 1-process value on the whole batch up to reassociation of the sums (docs/tolerances.md).
  Every rank then takes the same optimiser step, so the replicas stay bit-identical.
* **One decision.** A growth check is computed on rank 0 only, on the one probe every rank drew; the
  decision (its events, the controller's state, the tracker vectors) and the check's record are
  broadcast, and every other rank applies the same events to its own parameters and optimiser state
  with the check's own surgery (:meth:`DistributedEngine.apply_decision`). Weights are never broadcast.
* **The agreement check.** At the start and after every check every rank's :class:`Fingerprint`
  (head ids, prototype ids, captured rank, SHA-256 of the parameters and of the optimiser state) is
  gathered and compared (:func:`check_agreement`); any difference raises
  :class:`ArchitectureDisagreement` on every rank, naming the rank and the field. A failure on one
  rank where ranks do different work (rank 0's check, another rank applying the decision) is sent to
  the others, so every rank raises instead of waiting in a collective until the timeout.

gloo on CPU, NCCL where CUDA exists (one device per local rank; host objects then travel over a
gloo group). With ``W = 1`` the engine computes what :class:`accelerated.trainer.AcceleratedEngine`
computes (measured: bit-identical records). The launcher (:func:`main`) runs under ``torchrun``::

    torchrun --nproc_per_node=2 -m accelerated.distributed --dataset planted --config cfg.json --out run.json

and only rank 0 prints progress and writes the record.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from numpy.typing import NDArray
from torch import Tensor

from accelerated.backward import flatten, to_host
from accelerated.growth_phases import TORCH_BACKEND, AcceleratedState
from accelerated.step import StepFunction
from accelerated.trainer import AcceleratedEngine
from ddcl_incrt.arguments import non_negative_int, path_argument, seed_argument
from ddcl_incrt.exit_codes import INTERRUPTED, OK, internal_error, program_error
from ddcl_incrt.interrupts import interrupt_line, terminate_as_interrupt
from ddcl_incrt.output_paths import check_output_dir, check_output_file, write_with_fallback
from reference._arrays import F64Array
from reference.growth_phases import Context, TrainerState, apply_event
from reference.growth_statistics import Probe
from reference.incrt.controller import EventKind, GrowthEvent, GrowthState
from reference.log import CheckRecord, InvariantRecord
from reference.model import LayerConfig
from reference.train_config import TrainConfig
from training.checkpoint import Checkpoint, CheckpointPolicy, latest_checkpoint
from training.data import SequenceDataset, named_dataset
from training.fields import Fields, format_errors, read_dataclass
from training.files import parse_json, read_regular_file
from training.record import RunRecord
from training.trainer import ProgressInfo, resume, run


class ArchitectureDisagreement(RuntimeError):
    """The ranks of a data-parallel run hold different architectures, parameters or optimiser state."""


def shard(batch_size: int, world_size: int, rank: int) -> slice:
    """Rank ``rank``'s slice of a global minibatch of ``batch_size`` sequences: the contiguous
    ``rank``-th of ``world_size`` equal parts (equal, so the mean of the shard means is the mean)."""
    for name, value, low in (("batch_size", batch_size, 1), ("world_size", world_size, 1), ("rank", rank, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if rank >= world_size:
        raise ValueError(f"rank: {rank} is not below the world size {world_size}")
    if batch_size % world_size:
        raise ValueError(
            f"batch_size: {batch_size} sequences cannot be split into {world_size} equal shards (one per "
            f"process); choose a multiple of {world_size}"
        )
    part = batch_size // world_size
    return slice(rank * part, (rank + 1) * part)


# --------------------------------------------------------------------------------------------------
# The agreement check
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fingerprint:
    """What must be identical on every rank after a growth check. The digests are of the exact bytes
    (the replicas are bit-identical by construction: same all-reduced gradients, same step)."""

    step: int
    head_ids: tuple[int, ...]
    next_head_id: int
    prototype_ids: tuple[int, ...]
    captured_rank: int
    params_sha256: str
    optimizer_sha256: str


def _digest(tensors: Mapping[str, Tensor]) -> str:
    h = hashlib.sha256()
    for name, t in tensors.items():
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fingerprint(es: AcceleratedState) -> Fingerprint:
    """The :class:`Fingerprint` of one rank's state."""
    return Fingerprint(
        step=es.step,
        head_ids=tuple(es.params.heads),
        next_head_id=es.params.next_head_id,
        prototype_ids=tuple(es.params.prototype_ids),
        captured_rank=es.growth.m,
        params_sha256=_digest(flatten(es.params)),
        optimizer_sha256=_digest(es.opt_state.named_tensors()),
    )


def check_agreement(prints: Sequence[Fingerprint]) -> None:
    """Raise :class:`ArchitectureDisagreement` unless every rank's fingerprint (index = rank) equals
    rank 0's; the message names each differing rank and field."""
    if isinstance(prints, str) or not isinstance(prints, Sequence):  # type: ignore[unreachable]
        raise TypeError(f"prints: expected a sequence of Fingerprint (one per rank), got {type(prints).__name__}")
    if not prints:
        raise ValueError("prints: expected one fingerprint per rank, got none")
    for r, p in enumerate(prints):
        if not isinstance(p, Fingerprint):
            raise TypeError(f"prints[{r}]: expected a Fingerprint, got {type(p).__name__}")
    first = prints[0]
    diffs = [
        f"rank {r} has {f.name} = {getattr(p, f.name)!r}, rank 0 {getattr(first, f.name)!r}"
        for r, p in enumerate(prints)
        for f in fields(Fingerprint)
        if getattr(p, f.name) != getattr(first, f.name)
    ]
    if diffs:
        raise ArchitectureDisagreement(f"the ranks disagree at step {first.step}: " + "; ".join(diffs))


# --------------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankFailure:
    """Rank 0's failure in a growth check, sent to the other ranks so that each raises the same kind: a
    ``ValueError`` (a bad input or configuration, e.g. θ not resolvable: exit code 2 on every rank) or
    anything else as a ``RuntimeError`` (a bug: exit code 3)."""

    message: str
    input_error: bool

    def exception(self) -> Exception:
        return ValueError(self.message) if self.input_error else RuntimeError(self.message)


@dataclass(frozen=True, eq=False)
class Decision:
    """What rank 0's growth check sends to the other ranks: the check's outputs and the host part of
    the state after it (weights are not sent: each rank applies ``events`` to its own)."""

    record: CheckRecord
    events: tuple[GrowthEvent, ...]
    invariants: tuple[InvariantRecord, ...]
    growth: GrowthState
    ranks: tuple[int, ...]
    w_top: NDArray[np.float64]
    w_bottom: NDArray[np.float64]


@dataclass(frozen=True)
class DistributedEngine(AcceleratedEngine):
    """:class:`accelerated.trainer.AcceleratedEngine` as one rank of ``world_size`` data-parallel
    processes (the module docstring says how). Build it with :meth:`from_process_group` after
    ``torch.distributed.init_process_group``; ``object_group`` carries host objects (``None``: the
    default group, which must then be gloo)."""

    rank: int = 0
    world_size: int = 1
    object_group: Any = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """As a checkpoint names it: the accelerated engine's name and the world size (another world
        size reassociates the batch mean, so a run resumes bit for bit only on the same one)."""
        return f"{super().name}:world{self.world_size}"

    @classmethod
    def from_process_group(cls, dtype: torch.dtype = torch.float64, *, compile: bool = False) -> DistributedEngine:
        """The engine of this process: rank and world size of the default group; the device is
        ``cuda:LOCAL_RANK`` under NCCL (host objects then over a new gloo group), else the CPU."""
        if not dist.is_initialized():
            raise RuntimeError(
                "torch.distributed: no process group; call init_process() (or init_process_group) first, "
                "e.g. under torchrun"
            )
        backend = str(dist.get_backend())
        device, objects = "cpu", None
        if backend == "nccl":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            objects = dist.new_group(backend="gloo")
        elif backend != "gloo":
            raise ValueError(f"backend: expected 'gloo' or 'nccl', got {backend!r}")
        return cls(
            dtype,
            device,
            StepFunction(compile=compile),
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            object_group=objects,
        )

    def start(self, ctx: Context, state: TrainerState) -> AcceleratedState:
        shard(ctx.train_cfg.batch_size, self.world_size, self.rank)  # refuse an unequal split first
        es = super().start(ctx, state)
        self.agree(es)  # every rank must start from the same state (same seed, same data)
        return es

    def step(
        self, ctx: Context, es: AcceleratedState, x: F64Array, labels: NDArray[np.int64]
    ) -> tuple[AcceleratedState, Mapping[str, Tensor], tuple[InvariantRecord, ...]]:
        part = shard(x.shape[0], self.world_size, self.rank)
        grads, losses, Y, Q = self.gradients(ctx, es, x[part], labels[part])
        grads, losses = self.mean_over_ranks(grads, losses)
        records: tuple[InvariantRecord, ...] = ()
        if ctx.train_cfg.check_invariants:
            # D1 on the global minibatch, as the 1-process run checks it: the shards' tokens in rank
            # order are the batch's tokens in order (contiguous shards).
            Y_all, Q_all = self._gather_rows(Y.detach()), self._gather_rows(Q.detach())
            records = self._d1(es.params, x, labels, Y_all, Q_all, ctx.layer_cfg, es.step + 1)
        return self.apply_gradients(ctx, es, grads), losses, records

    def mean_over_ranks(
        self, grads: Mapping[str, Tensor], losses: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The mean over the ranks of every gradient and loss term, by one ``all_reduce`` (sum) of one
        buffer followed by ``/ world_size``."""
        names, keys = list(grads), list(losses)
        like = next(iter(grads.values()))
        buf = torch.cat([grads[n].reshape(-1) for n in names] + [torch.stack([losses[k] for k in keys]).to(like.dtype)])
        if self.world_size > 1:
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf = buf / self.world_size
        sizes = [grads[n].numel() for n in names] + [len(keys)]
        *parts, loss_part = torch.split(buf, sizes)
        out_grads = {n: p.reshape(grads[n].shape) for n, p in zip(names, parts, strict=True)}
        out_losses = {k: loss_part[i].to(losses[k].dtype) for i, k in enumerate(keys)}
        return out_grads, out_losses

    def _gather_rows(self, t: Tensor) -> Tensor:
        if self.world_size == 1:
            return t
        parts = [torch.empty_like(t) for _ in range(self.world_size)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=0)

    def check(
        self, ctx: Context, es: AcceleratedState, probe: Probe
    ) -> tuple[AcceleratedState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
        # A failure on one rank is sent to the others, so that every rank raises instead of the
        # others waiting in the next collective until the process group's timeout.
        payload: list[Decision | RankFailure | None] = [None]
        new, failure = es, None
        if self.rank == 0:
            try:
                new, record, events, invariants = self.decide(ctx, es, probe)
                payload = [
                    Decision(
                        record, events, invariants, new.growth, new.ranks, to_host(new.w_top), to_host(new.w_bottom)
                    )
                ]
            except Exception as exc:
                failure = exc
                message = f"rank 0's growth check at step {es.step} failed: {type(exc).__name__}: {exc}"
                payload = [RankFailure(message, input_error=isinstance(exc, ValueError))]
        dist.broadcast_object_list(payload, src=0, group=self.object_group)
        if failure is not None:
            raise failure
        decision = payload[0]
        if isinstance(decision, RankFailure):
            raise decision.exception()
        if not isinstance(decision, Decision):
            raise RuntimeError(f"rank 0 sent no decision at step {es.step}: {decision!r:.200}")
        if self.rank != 0:
            try:
                new = self.apply_decision(ctx, es, decision)
            except Exception as exc:
                self.agree(f"could not apply rank 0's decision at step {es.step}: {type(exc).__name__}: {exc}")
                raise  # agree has raised already; kept for the reader
        self.agree(new)
        return new, decision.record, decision.events, decision.invariants

    def decide(
        self, ctx: Context, es: AcceleratedState, probe: Probe
    ) -> tuple[AcceleratedState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
        """Rank 0's growth check: :func:`accelerated.growth_phases.growth_check` on the agreed probe."""
        return super().check(ctx, es, probe)

    def apply_decision(self, ctx: Context, es: AcceleratedState, decision: Decision) -> AcceleratedState:
        """``es`` after rank 0's decision: its events applied in order to this rank's parameters and
        optimiser state by :func:`reference.growth_phases.apply_event` with the check's own backend (a
        birth draws the newborn as rank 0 did, growth variants included), and the host state taken as sent."""
        for e in decision.events:
            if e.kind is EventKind.BIRTH and e.u_plus is None:
                raise ArchitectureDisagreement(f"rank {self.rank}: rank 0's birth at step {e.step} has no u₊")
            es = apply_event(TORCH_BACKEND, ctx, es, e)

        def dev(a: NDArray[np.float64]) -> Tensor:
            return torch.tensor(a, dtype=torch.float64, device=self.device)

        return replace(
            es,
            growth=decision.growth,
            ranks=decision.ranks,
            Q_cap=dev(decision.growth.Q_cap),
            w_top=dev(decision.w_top),
            w_bottom=dev(decision.w_bottom),
        )

    def agree(self, es: AcceleratedState | str) -> None:
        """:func:`check_agreement` on every rank's :func:`fingerprint`, or on a rank's failure (a
        string) an :class:`ArchitectureDisagreement` naming it; collective: every rank raises."""
        gathered: list[Fingerprint | str | None] = [None] * self.world_size
        dist.all_gather_object(gathered, es if isinstance(es, str) else fingerprint(es), group=self.object_group)
        failed = [f"rank {r} {item}" for r, item in enumerate(gathered) if not isinstance(item, Fingerprint)]
        if failed:
            raise ArchitectureDisagreement("; ".join(failed))
        check_agreement([p for p in gathered if isinstance(p, Fingerprint)])


# --------------------------------------------------------------------------------------------------
# The launcher
# --------------------------------------------------------------------------------------------------

Backend = Literal["auto", "gloo", "nccl"]


def init_process(backend: Backend = "auto") -> str:
    """``init_process_group`` from torchrun's environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``, ``LOCAL_RANK``); ``auto`` is NCCL when CUDA is available, else gloo. Returns the
    backend."""
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(
            f"environment: {missing} not set; launch with torchrun (e.g. torchrun --nproc_per_node=2 -m "
            "accelerated.distributed ...)"
        )
    chosen = ("nccl" if torch.cuda.is_available() else "gloo") if backend == "auto" else backend
    if chosen == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=chosen, init_method="env://")
    return chosen


def read_config(path: Path) -> tuple[LayerConfig, TrainConfig]:
    """The ``layer_config`` and ``train_config`` objects of a JSON file (the fields and format of a run
    record's; other keys are refused), each field checked and named in any error. Any problem with the
    file (missing, not a regular file, not UTF-8 JSON) is a :class:`training.fields.RecordFormatError`
    naming it."""
    with format_errors(f"{path}: cannot be read"):  # a FIFO or a device is refused, never waited on
        raw = read_regular_file(Path(path))
    with format_errors(f"{path}: not a JSON configuration"):
        doc = parse_json(raw)
    f = Fields(doc, f"{path}:")
    f.expect_keys(("layer_config", "train_config"))
    return read_dataclass(LayerConfig, f.sub("layer_config")), read_dataclass(TrainConfig, f.sub("train_config"))


def _print_progress(info: ProgressInfo) -> None:
    if info.step % 50 == 0 or info.step == info.steps:
        lam = "-" if info.lam_max is None else f"{info.lam_max / info.theta:.3f}"
        print(
            f"step {info.step}/{info.steps}  L {info.L:.4f}  heads {info.n_heads}  prototypes "
            f"{info.n_prototypes}  λ_max/θ {lam}  violations {info.violations}",
            flush=True,
        )


def train_distributed(
    engine: DistributedEngine,
    data: SequenceDataset,
    layer_cfg: LayerConfig,
    train_cfg: TrainConfig,
    *,
    rng: np.random.Generator,
    progress: Any = None,
    checkpoint_dir: Path | None = None,
    checkpoint_every: int = 0,
    resume_from: Path | Checkpoint | None = None,
) -> RunRecord:
    """:func:`training.trainer.run` (or :func:`training.trainer.resume`) on this rank. Only rank 0
    writes checkpoints (every rank holds the same state, so one copy is the run's); every rank resumes
    from the same file (or the checkpoint loaded from it by :func:`checkpoint_to_resume`), which must
    therefore be on a file system all ranks read, and must have been written with this configuration
    and world size."""
    policy = None
    if checkpoint_dir is not None and engine.rank == 0:
        policy = CheckpointPolicy(checkpoint_dir, every=checkpoint_every)
    if resume_from is None:
        return run(data, layer_cfg, train_cfg, rng=rng, engine=engine, progress=progress, checkpoints=policy)
    ck = resume_from if isinstance(resume_from, Checkpoint) else checkpoint_to_resume(resume_from, layer_cfg, train_cfg)
    return resume(ck, data, engine=engine, progress=progress, checkpoints=policy)


def checkpoint_to_resume(path: Path, layer_cfg: LayerConfig, train_cfg: TrainConfig) -> Checkpoint:
    """The checkpoint at ``path`` (a file, or the latest in a folder), which must have been written with
    this configuration; a checkpoint that cannot be read is a
    :class:`training.fields.RecordFormatError` naming it."""
    ck = Checkpoint.load(latest_checkpoint(path))
    if (ck.layer_config, ck.train_config) != (layer_cfg, train_cfg):
        raise ValueError(f"resume: {path} was written with another configuration than --config")
    return ck


def main(argv: Sequence[str] | None = None) -> int:
    """The launcher; its exit code as the ``ddcl-incrt`` commands' (:mod:`ddcl_incrt.exit_codes`).
    Everything that can be checked is checked before any training, on every rank: the configuration
    file, the output paths (rank 0's), the checkpoint to resume from, torchrun's environment. A bad
    argument or file, there or later (a ``ValueError``, an ``OSError``), is one line on stderr and exit
    code 2; Ctrl-C or SIGTERM one line saying where the state is and 130; anything else, a bug, its
    traceback and 3."""
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m accelerated.distributed",
        description="Data-parallel training of the accelerated layer (docs/distributed.md).",
    )
    parser.add_argument("--dataset", choices=("digits", "planted"), required=True)
    parser.add_argument("--config", type=path_argument, required=True, help="JSON with layer_config and train_config")
    parser.add_argument("--out", type=path_argument, required=True, help="where rank 0 writes the run record")
    parser.add_argument(
        "--seed",
        type=seed_argument,
        default=0,
        help="data seed, 0 to 2**32 - 1; the run's rng is default_rng([seed, 1])",
    )
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--backend", choices=("auto", "gloo", "nccl"), default="auto")
    parser.add_argument("--compile", action="store_true", help="torch.compile the step's loss")
    parser.add_argument(
        "--checkpoint-dir",
        type=path_argument,
        default=None,
        help="rank 0 writes checkpoints here (on interruption at least)",
    )
    parser.add_argument(
        "--checkpoint-every", type=non_negative_int, default=0, help="and every N steps (0: only on interruption)"
    )
    parser.add_argument(
        "--resume",
        type=path_argument,
        default=None,
        help="every rank resumes from this checkpoint (or the latest in a folder)",
    )
    args = parser.parse_args(argv)
    if args.checkpoint_every > 0 and args.checkpoint_dir is None:  # nowhere to write them: not ignored
        parser.error("--checkpoint-every: checkpoints need --checkpoint-dir (where rank 0 writes them)")
    prog = parser.prog
    try:
        layer_cfg, train_cfg = read_config(args.config)
        if os.environ.get("RANK", "0") == "0":  # only rank 0 writes
            check_output_file(args.out, "--out")
            if args.checkpoint_dir is not None:
                check_output_dir(args.checkpoint_dir, "--checkpoint-dir")
        checkpoint = None if args.resume is None else checkpoint_to_resume(args.resume, layer_cfg, train_cfg)
    except (ValueError, OSError) as exc:  # RecordFormatError and OutputPathError are ValueErrors
        return program_error(prog, str(exc))
    try:
        backend = init_process(args.backend)
    except (RuntimeError, ValueError) as exc:  # no torchrun environment, a rendezvous that failed
        return program_error(prog, f"cannot start the process group: {exc}")
    try:
        with terminate_as_interrupt():
            _launch(args, backend, layer_cfg, train_cfg, checkpoint)
    except KeyboardInterrupt as exc:  # rank 0's trainer notes where it saved the state; the other ranks say so
        if dist.get_rank() == 0:
            print(f"{prog}: {interrupt_line(exc)}", file=sys.stderr)
        return INTERRUPTED
    # OutputWriteError names where the record was written instead; FloatingPointError is a run the
    # configuration made diverge (its line names the step and the remedy), as in ddcl_incrt.exit_codes
    except (ValueError, OSError, FloatingPointError) as exc:
        return program_error(prog, str(exc))
    except Exception:
        return internal_error(prog)
    finally:
        dist.destroy_process_group()
    return OK


def _launch(
    args: argparse.Namespace,
    backend: str,
    layer_cfg: LayerConfig,
    train_cfg: TrainConfig,
    checkpoint: Checkpoint | None,
) -> None:
    engine = DistributedEngine.from_process_group(getattr(torch, args.dtype), compile=args.compile)
    progress = _print_progress if engine.rank == 0 else None
    data = named_dataset(args.dataset, args.seed)
    record = train_distributed(
        engine,
        data,
        layer_cfg,
        train_cfg,
        rng=np.random.default_rng([args.seed, 1]),
        progress=progress,
        checkpoint_dir=args.checkpoint_dir,
        checkpoint_every=args.checkpoint_every,
        resume_from=checkpoint,
    )
    if engine.rank == 0:
        meta = {
            "command": "torchrun -m accelerated.distributed " + " ".join(sys.argv[1:]),
            "engine": f"accelerated, data-parallel ({backend}, {engine.world_size} processes, {args.dtype}, "
            f"{engine.device})",
            "world_size": engine.world_size,
            "seed": args.seed,
            "train_rng": [args.seed, 1],
        }
        # a path that became unwritable during the run: the record goes to a temporary folder, named in the error
        out = write_with_fallback("--out", args.out, replace(record, meta=meta).save, file=True)
        a = record.architecture
        print(
            f"wrote {out}: {a.n_heads} heads, {a.n_prototypes} prototypes, {a.births} births, "
            f"{a.head_prunes} head prunes, {a.prototype_prunes} prototype prunes, "
            f"test accuracy {record.test_accuracy:.4f}, {record.wall_time_s:.1f} s",
            flush=True,
        )


__all__ = [
    "ArchitectureDisagreement",
    "Backend",
    "Decision",
    "DistributedEngine",
    "Fingerprint",
    "RankFailure",
    "check_agreement",
    "checkpoint_to_resume",
    "fingerprint",
    "init_process",
    "main",
    "read_config",
    "shard",
    "train_distributed",
]

if __name__ == "__main__":
    raise SystemExit(main())
