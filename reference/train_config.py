"""The configuration of a training run: everything that is not the layer (:class:`reference.model.LayerConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from reference._arrays import check_count, check_real
from reference.incrt.controller import GrowthVariant, check_growth_settings, check_growth_variants
from reference.incrt.operators import check_theta
from reference.optim import SGD, Adam, LearningRates, Optimizer, OptimizerKind

# Prototypes faster than the encoder (claim R3's two time scales); temperatures on the encoder's scale.
DEFAULT_LR = LearningRates(rest=3e-3, prototypes=1e-2, temperatures=3e-3)


@dataclass(frozen=True)
class TrainConfig:
    """Everything about a run that is not the layer. Thresholds ``θ = c_θ · median ‖A_res‖_F`` over the
    calibration probes at initialisation and ``φ_g = 0.01 θ`` (SPEC §3.4), unless given explicitly."""

    steps: int  # optimiser steps, each on a minibatch of batch_size sequences
    batch_size: int = 32  # sequences per step, drawn without replacement within the step
    optimizer: OptimizerKind = "adam"  # "sgd" or "adam" (reference.optim)
    lr: LearningRates = DEFAULT_LR  # per-group rates: prototypes, temperatures, rest
    check_every: int = 50  # SPEC's g: a growth check every that many steps
    probe_size: int = 128  # sequences in the fixed probe batch the growth statistics are taken on
    calibration_probes: int = 5  # random probes at initialisation whose median ‖A_res‖_F calibrates θ
    c_theta: float = 0.1  # θ = c_θ · median ‖A_res‖_F (SPEC §3.4)
    theta: float | None = None  # explicit θ > 0 (None: calibrated)
    phi_g: float | None = None  # explicit φ_g ≥ 0 (None: 0.01 θ)
    T_d: int = 200  # dwell time in steps (SPEC §3.2, §3.3)
    T_prune: int = 5  # pruning patience in checks (SPEC §3.3, §3.5)
    eps_K: float = 0.01  # prototype mass floor ε_K ∈ [0, 1) (SPEC §3.5)
    seed: int = 0  # seeds the births: head h starts from default_rng([seed, h])
    max_heads: int | None = None  # cap on |𝓗| (None: only G1's cap 1 + d)
    tracker_steps: int = 20  # Oja / MCA-EXIN iterations per check (G6)
    check_invariants: bool = True  # record every applicable invariant at every event
    eval_every: int = 0  # evaluate train/test accuracy every that many steps (0: only at the end)
    # named variants of the growth rule (reference.incrt.controller.GROWTH_VARIANTS); () is the paper's rule
    growth_variants: tuple[GrowthVariant, ...] = ()

    def __post_init__(self) -> None:
        p = "TrainConfig."
        check_count(p + "steps", self.steps, 1)
        check_count(p + "batch_size", self.batch_size, 1)
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"{p}optimizer: expected 'sgd' or 'adam', got {self.optimizer!r}")
        if not isinstance(self.lr, LearningRates):
            raise TypeError(f"{p}lr: expected reference.optim.LearningRates, got {type(self.lr).__name__}")
        check_count(p + "check_every", self.check_every, 1)
        check_count(p + "probe_size", self.probe_size, 1)
        check_count(p + "calibration_probes", self.calibration_probes, 1)
        if not check_real(p + "c_theta", self.c_theta) > 0.0:
            raise ValueError(f"{p}c_theta: must be > 0, got {self.c_theta!r}")
        if self.theta is not None:
            check_theta(p + "theta", self.theta)
        # φ_g's default (0.01 θ) is not known before calibration; 0 stands in for it here.
        phi_g = 0.0 if self.phi_g is None else self.phi_g
        check_growth_settings(p, phi_g=phi_g, T_d=self.T_d, T_prune=self.T_prune, eps_K=self.eps_K)
        check_count(p + "seed", self.seed, 0)
        if self.max_heads is not None:
            check_count(p + "max_heads", self.max_heads, 1)
        check_count(p + "tracker_steps", self.tracker_steps, 1)
        if not isinstance(self.check_invariants, bool):
            raise TypeError(f"{p}check_invariants: expected a bool, got {type(self.check_invariants).__name__}")
        check_count(p + "eval_every", self.eval_every, 0)
        check_growth_variants(p + "growth_variants", self.growth_variants)
        if "prune_at_theta" in self.growth_variants and self.phi_g is not None:
            raise ValueError(
                f"{p}phi_g: the growth variant 'prune_at_theta' sets φ_g = θ; give either it or phi_g = "
                f"{self.phi_g!r}, not both"
            )


def make_optimizer(train_cfg: TrainConfig) -> Optimizer:
    """The optimiser ``train_cfg.optimizer`` with the per-group rates ``train_cfg.lr``."""
    return SGD(lr=train_cfg.lr) if train_cfg.optimizer == "sgd" else Adam(lr=train_cfg.lr)


__all__ = [
    "DEFAULT_LR",
    "TrainConfig",
    "make_optimizer",
]
