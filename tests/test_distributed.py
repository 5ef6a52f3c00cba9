"""Data-parallel training across processes (:mod:`accelerated.distributed`), on gloo on this CPU.

Two processes, each taking half of every global minibatch of the small run (tests/_small_run.py:
100 steps with births, a head prune and prototype prunes), against one process of the accelerated
engine on the whole batch: the same events at the same steps exactly, and losses, every check's
statistics and the final parameters within the float64 VALUE row (two partial means all-reduced
vs one mean is a reassociation of the same sums; docs/tolerances.md, "Data-parallel runs"). The two
ranks' records are bit-identical. The agreement check fires when one rank plants a disagreement
(it skips births); a failure on one rank (applying the decision, or rank 0's check) stops every rank
with an error instead of a hang; an unequal batch split is refused before any collective. The launcher
runs under ``torchrun`` and only rank 0 writes the record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from _accelerated_harness import compare_trajectories, first_tie  # noqa: E402
from _small_run import LAYER, RUN, TRAIN_SEED, small_data  # noqa: E402

from accelerated import trainer as acc_trainer  # noqa: E402
from accelerated.distributed import (  # noqa: E402
    ArchitectureDisagreement,
    Decision,
    DistributedEngine,
    check_agreement,
    fingerprint,
    read_config,
    shard,
    train_distributed,
)
from accelerated.growth_phases import AcceleratedState, remove_prototype_column  # noqa: E402
from reference.growth_phases import Context  # noqa: E402
from reference.growth_statistics import Probe  # noqa: E402
from reference.incrt.controller import EventKind, GrowthConfig, GrowthEvent  # noqa: E402
from reference.log import CheckRecord, InvariantRecord  # noqa: E402
from reference.surgery import flatten  # noqa: E402
from reference.tolerances import CheckKind, tolerance  # noqa: E402
from training.checkpoint import Checkpoint  # noqa: E402
from training.record import RunRecord  # noqa: E402
from training.trainer import init_state, run  # noqa: E402

WORLD = 2
EVERY_EVENT = {"birth", "head_prune", "prototype_prune"}
# Reassociation of the batch mean (docs/tolerances.md, "Data-parallel runs"): measured over these
# 100 steps 2.6e-16 (losses) and 1.8e-16 (final parameters, scaled), far inside the row.
TRAJECTORY_RTOL = tolerance("float64", CheckKind.VALUE).rtol


class _SkipsBirths(DistributedEngine):
    """A planted bug on one rank: rank 0's births are not applied."""

    def apply_decision(self, ctx: Context, es: AcceleratedState, decision: Decision) -> AcceleratedState:
        kept = tuple(e for e in decision.events if e.kind is not EventKind.BIRTH)
        return super().apply_decision(ctx, es, replace(decision, events=kept))


class _CannotApply(DistributedEngine):
    """A planted failure on one rank while it applies rank 0's decision."""

    def apply_decision(self, ctx: Context, es: AcceleratedState, decision: Decision) -> AcceleratedState:
        raise ValueError("planted: no surgery here")


class _CheckFails(DistributedEngine):
    """A planted failure of rank 0's growth check."""

    def decide(
        self, ctx: Context, es: AcceleratedState, probe: Probe
    ) -> tuple[AcceleratedState, CheckRecord, tuple[GrowthEvent, ...], tuple[InvariantRecord, ...]]:
        raise RuntimeError("planted: no check here")


# Growth variants that shape the newborn (and record its strength): every rank must draw it as rank 0 did.
VARIANT_RUN = replace(RUN, growth_variants=("birth_along_u_plus", "newborn_margin"))

PLANTED = {"skips_births": (1, _SkipsBirths), "cannot_apply": (1, _CannotApply), "check_fails": (0, _CheckFails)}


def _worker(rank: int, out_dir: str) -> None:
    """One rank: the small run on the data-parallel engine (record saved per rank), then each planted
    fault of :data:`PLANTED` on its rank (the error each rank raised saved per rank)."""
    torch.set_num_threads(1)
    out = Path(out_dir)
    dist.init_process_group("gloo", store=dist.FileStore(str(out / "store"), WORLD), rank=rank, world_size=WORLD)
    try:
        engine = DistributedEngine.from_process_group()
        record = run(small_data(), LAYER, RUN, rng=np.random.default_rng(TRAIN_SEED), engine=engine)
        record.save(out / f"rank{rank}.json")
        for name, (faulty_rank, cls) in PLANTED.items():
            planted = engine
            if rank == faulty_rank:
                planted = cls(engine.dtype, engine.device, engine.loss, rank=rank, world_size=WORLD)
            try:
                run(small_data(), LAYER, RUN, rng=np.random.default_rng(TRAIN_SEED), engine=planted)
                message = "no error"
            except Exception as exc:  # what each rank raised is the test's subject
                message = f"{type(exc).__name__}: {exc}"
            (out / f"{name}{rank}.txt").write_text(message, encoding="utf-8")
        variant = run(small_data(), LAYER, VARIANT_RUN, rng=np.random.default_rng(TRAIN_SEED), engine=engine)
        variant.save(out / f"variant{rank}.json")
        # checkpoints: rank 0 writes every 50 steps; then every rank resumes from step 50
        rng = np.random.default_rng(TRAIN_SEED)
        train_distributed(engine, small_data(), LAYER, RUN, rng=rng, checkpoint_dir=out / "ckpt", checkpoint_every=50)
        step50 = out / "ckpt" / "step-00000050.ckpt.npz"  # resume draws from the checkpoint's rng, not rng
        resumed = train_distributed(engine, small_data(), LAYER, RUN, rng=rng, resume_from=step50)
        resumed.save(out / f"resumed{rank}.json")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("distributed")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")  # two processes on two cores; the children inherit it
        mp.spawn(_worker, args=(str(out),), nprocs=WORLD, join=True)
    return out


@pytest.fixture(scope="module")
def one_process_run() -> RunRecord:
    return acc_trainer.train(small_data(), LAYER, RUN, rng=np.random.default_rng(TRAIN_SEED))


def _events(rec: RunRecord) -> list[tuple[int, str, int | None, int | None]]:
    return [(e.step, e.kind.value, e.head_id, e.prototype_id) for e in rec.events]


def test_two_processes_agree_with_one_on_the_same_global_batch(
    two_process_run: Path, one_process_run: RunRecord
) -> None:
    two = RunRecord.load(two_process_run / "rank0.json")
    one = one_process_run
    assert {kind for _, kind, _, _ in _events(one)} >= EVERY_EVENT, "the case must exercise every event"
    cmp = compare_trajectories(one, two, TRAJECTORY_RTOL)
    # Summed in another order, the two runs' statistics may differ in the last bits: their decisions are
    # compared only because no statistic lies within the DECISION row of its threshold.
    assert cmp.stopped_at is None, f"near-tie at step {cmp.stopped_at}; pick another case"
    assert _events(two) == _events(one)
    assert cmp.differences == ()
    assert two.violations() == ()
    assert two.architecture == one.architecture


def test_every_rank_holds_the_same_record(two_process_run: Path) -> None:
    r0, r1 = (RunRecord.load(two_process_run / f"rank{r}.json") for r in range(WORLD))
    assert _events(r1) == _events(r0)
    assert r1.losses == r0.losses
    assert r1.architecture == r0.architecture
    f0, f1 = flatten(r0.final_params), flatten(r1.final_params)
    assert list(f1) == list(f0)
    assert all(np.array_equal(f1[k], f0[k]) for k in f0)


def _first_birth(rec: RunRecord) -> int:
    return min(e.step for e in rec.events if e.kind is EventKind.BIRTH)


def _raised(out: Path, name: str) -> list[str]:
    return [(out / f"{name}{rank}.txt").read_text(encoding="utf-8") for rank in range(WORLD)]


def test_the_agreement_check_fires_when_a_rank_skips_a_birth(two_process_run: Path, one_process_run: RunRecord) -> None:
    for message in _raised(two_process_run, "skips_births"):
        assert message.startswith("ArchitectureDisagreement: ")
        assert f"at step {_first_birth(one_process_run)}" in message
        assert "rank 1 has head_ids = (0,), rank 0 (0, 1)" in message


def test_a_rank_that_cannot_apply_the_decision_stops_every_rank(two_process_run: Path) -> None:
    # the first check (step 10) fails on rank 1; rank 0 learns it in the fingerprint exchange
    for message in _raised(two_process_run, "cannot_apply"):
        assert message.startswith("ArchitectureDisagreement: rank 1 could not apply rank 0's decision at step 10")
        assert "planted: no surgery here" in message


def test_a_failed_check_on_rank_0_stops_every_rank(two_process_run: Path) -> None:
    rank0, rank1 = _raised(two_process_run, "check_fails")
    assert rank0 == "RuntimeError: planted: no check here"
    assert rank1 == "RuntimeError: rank 0's growth check at step 10 failed: RuntimeError: planted: no check here"


def _start_state() -> tuple[Context, AcceleratedState]:
    state = init_state(LAYER, RUN, rng=np.random.default_rng(TRAIN_SEED))
    ctx = Context(
        layer_cfg=LAYER, train_cfg=RUN, growth_cfg=GrowthConfig(theta=1.0, phi_g=0.0, T_d=1, T_prune=1, eps_K=0.0)
    )
    return ctx, acc_trainer.AcceleratedEngine().start(ctx, state)


def test_growth_variants_give_the_same_events_on_every_rank_as_on_one_process(two_process_run: Path) -> None:
    """A birth under ``birth_along_u_plus`` is applied on the other ranks with the variant's newborn
    (not a plain random head): the agreement check holds and the events are the 1-process run's."""
    single = acc_trainer.train(small_data(), LAYER, VARIANT_RUN, rng=np.random.default_rng(TRAIN_SEED))
    assert any(e.kind is EventKind.BIRTH for e in single.events)
    assert first_tie(single, "float64") is None, "a near-tie: the decision there may differ; pick another case"
    for rank in range(WORLD):
        rec = RunRecord.load(two_process_run / f"variant{rank}.json")
        assert first_tie(rec, "float64") is None, f"rank {rank}: a near-tie; pick another case"
        assert _events(rec) == _events(single)


def test_a_distributed_run_resumes_bit_for_bit_from_rank_0s_checkpoint(two_process_run: Path) -> None:
    """Only rank 0 writes; every rank resumes from that file and repeats the uninterrupted run exactly."""
    assert sorted(p.name for p in (two_process_run / "ckpt").iterdir()) == [
        "step-00000050.ckpt.npz",
        "step-00000100.ckpt.npz",
    ]
    ck = Checkpoint.load(two_process_run / "ckpt" / "step-00000050.ckpt.npz")
    assert ck.engine == "accelerated:float64:cpu:world2"
    for rank in range(WORLD):
        a = json.loads((two_process_run / f"resumed{rank}.json").read_text(encoding="utf-8"))
        b = json.loads((two_process_run / f"rank{rank}.json").read_text(encoding="utf-8"))
        a.pop("wall_time_s"), b.pop("wall_time_s")
        assert a == b


def test_check_agreement_names_the_rank_and_field_that_differ() -> None:
    _, es = _start_state()
    same = fingerprint(es)
    check_agreement([same, fingerprint(es)])  # identical states agree
    fewer = replace(es, params=remove_prototype_column(es.params, es.params.prototype_ids[0]))
    with pytest.raises(ArchitectureDisagreement, match="rank 1 has prototype_ids"):
        check_agreement([same, fingerprint(fewer)])
    stored = {k: v.detach().clone() for k, v in acc_trainer.acc_backward.leaves(es.params).items()}
    stored["b_c"][0] += 2.0**-40
    nudged = replace(es, params=acc_trainer.with_leaves(es.params, stored))
    with pytest.raises(ArchitectureDisagreement, match="rank 2 has params_sha256") as info:
        check_agreement([same, same, fingerprint(nudged)])
    assert "head_ids" not in str(info.value)


def test_an_unequal_batch_split_is_refused_before_any_collective() -> None:
    ctx, _ = _start_state()
    state = init_state(LAYER, RUN, rng=np.random.default_rng(TRAIN_SEED))
    with pytest.raises(ValueError, match="batch_size: 16 sequences cannot be split into 3 equal shards"):
        DistributedEngine(rank=0, world_size=3).start(ctx, state)
    assert shard(16, 2, 1) == slice(8, 16)
    with pytest.raises(ValueError, match="rank: 2 is not below the world size 2"):
        shard(16, 2, 2)
    with pytest.raises(ValueError, match="world_size"):
        shard(16, 0, 0)


def test_the_engine_needs_a_process_group() -> None:
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="no process group"):
        DistributedEngine.from_process_group()


def test_read_config_names_a_bad_field(tmp_path: Path) -> None:
    good = {"layer_config": asdict(LAYER), "train_config": asdict(RUN)}  # as a run record writes them
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(good), encoding="utf-8")
    assert read_config(path) == (LAYER, RUN)
    bad = {**good, "train_config": {**good["train_config"], "batch_size": 16.5}}
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(ValueError, match=r"train_config\.batch_size"):
        read_config(path)
    path.write_text('{"layer_config": ', encoding="utf-8")  # truncated
    with pytest.raises(ValueError, match=r"cfg\.json: not a JSON configuration"):
        read_config(path)


def test_the_launcher_runs_under_torchrun_and_rank_0_writes_the_record(tmp_path: Path) -> None:
    layer = {"d_in": 6, "d": 8, "d_k": 4, "d_v": 4, "seq_len": 8, "K_max": 8, "n_classes": 2, "T_P": 1.0}
    train = {"steps": 4, "batch_size": 8, "check_every": 2, "probe_size": 16, "calibration_probes": 1}
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"layer_config": {**layer, "lambda_q": 0.1}, "train_config": train}), encoding="utf-8")
    out = tmp_path / "out" / "planted.json"
    args = ["--standalone", "--nproc_per_node=2", "-m", "accelerated.distributed", "--dataset", "planted"]
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *args, "--config", str(cfg), "--out", str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("wrote ") == 1  # rank 0 only
    record = RunRecord.load(out)
    assert record.meta["world_size"] == WORLD
    assert len(record.losses.L) == 4
    assert [p.name for p in out.parent.iterdir()] == ["planted.json"]
