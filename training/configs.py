"""The named configurations of the project's runs, in one table: the layer of each bundled dataset and
the audit's training configuration (docs/runs.md says why each value). The audit, the studies, the
benchmarks and the scripts read them from here.
"""

from __future__ import annotations

from dataclasses import replace

from reference.model import LayerConfig
from reference.train_config import DEFAULT_LR, TrainConfig

# The configurations of docs/runs.md (scripts/run_digits.py, scripts/run_planted.py).
LAYERS: dict[str, LayerConfig] = {
    "digits": LayerConfig(d_in=8, d=16, d_k=8, d_v=8, seq_len=8, K_max=16, n_classes=10, T_P=1.0, lambda_q=0.1),
    "planted": LayerConfig(d_in=6, d=8, d_k=4, d_v=4, seq_len=8, K_max=8, n_classes=2, T_P=1.0, lambda_q=0.1),
}
TRAIN = TrainConfig(
    steps=1500,
    batch_size=64,
    optimizer="adam",
    lr=DEFAULT_LR,
    check_every=50,
    probe_size=128,
    calibration_probes=5,
    c_theta=0.1,  # SPEC §3.4 default; φ_g = 0.01 θ
    T_d=200,
    T_prune=5,
    eps_K=0.01,
    tracker_steps=20,
    eval_every=250,
)
# `ddcl-incrt audit --quick`: 300 steps with a check every 25 and a dwell of 50, so that a quick run has
# births, prototype prunes and a check of every live claim (the default run's 1500 steps, checks every 50
# and dwell 200 give its first birth at step 200); its architecture is not the default run's.
QUICK_TRAIN = replace(TRAIN, steps=300, check_every=25, T_d=50, T_prune=2, eval_every=100)


__all__ = ["LAYERS", "QUICK_TRAIN", "TRAIN"]
