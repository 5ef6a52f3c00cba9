"""The one small training configuration the tests share (torch-free): in 100 steps of a planted task
it has a birth, a head prune and prototype prunes, in well under a second on the reference engine.
Used by the differential trajectories (tests/_accelerated_harness.py) and the audit's tests."""

from __future__ import annotations

import numpy as np

from reference.model import LayerConfig
from reference.optim import LearningRates
from reference.train_config import TrainConfig
from training.data import SequenceDataset, planted_offsets
from training.record import RunRecord
from training.trainer import train

LAYER = LayerConfig(d_in=4, d=5, d_k=2, d_v=2, seq_len=4, K_max=4, n_classes=2, T_P=1.0, lambda_q=0.1)
# Calibrated so that one short run has births, a head prune and a prototype prune (θ small, φ_g large).
RUN = TrainConfig(
    steps=100,
    batch_size=16,
    lr=LearningRates.uniform(1e-2),
    check_every=10,
    probe_size=32,
    calibration_probes=3,
    T_d=10,
    T_prune=1,
    eps_K=0.2,
    tracker_steps=10,
    eval_every=30,
    theta=0.05,
    phi_g=10.0,
)
TRAIN_SEED = 1  # the rng of the run: np.random.default_rng(TRAIN_SEED)


def small_data() -> SequenceDataset:
    return planted_offsets(n_train=64, n_test=32, seq_len=4, d_in=4, offsets=(1, 2), rng=np.random.default_rng(0))


def small_run(run_cfg: TrainConfig = RUN) -> RunRecord:
    """The reference engine's record of the small run."""
    return train(small_data(), LAYER, run_cfg, rng=np.random.default_rng(TRAIN_SEED))
