"""Growth and pruning as a Hypothesis state machine over the reference model and trainer.

Rules: a training step, a growth check, a head-prune check, a prototype-prune check, a change of
the probe batch (a different subset of the data, rescaled — which moves ``C`` and hence ``A_res`` and
every ``G_h``, so that births and prunes both happen), and a checkpoint written, loaded and carried on
from (the state must come back bit for bit). After every rule the ``proved`` claims that
apply are asserted as invariants:

* **G1** — ``Q_cap`` orthonormal, its rank raised by one per birth, at most ``d`` births; the model's
  heads and the controller's agree;
* **G5** — at a head prune: every recorded G5 check holds, and, computed here independently of the
  trainer, the growth test on the same probe right after the prune makes no birth;
* **D1** — ``L_q = L_OLS + V``, ``V ≥ 0`` on the current probe, and on every recorded minibatch;
* **D5** — at a prototype prune: every recorded D5 check holds (three per removed prototype).

A failure shrinks to the shortest sequence of rules and raises :class:`ClaimViolation`, whose message
names the claim, the measured value and the bound.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import _phases as phases
import numpy as np
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from reference._arrays import arr
from reference.growth_phases import Context, TrainerState, calibrate
from reference.growth_statistics import Probe
from reference.incrt.controller import EventKind, GrowthEvent, grow_check
from reference.incrt.operators import directional_operator, residual_operator, second_moment
from reference.invariants.ddcl import d1_decomposition
from reference.invariants.incrt import check_g1
from reference.invariants.result import assert_all
from reference.log import LOSS_FIELDS, InvariantRecord, LossTrace
from reference.model import LayerConfig, forward, layer_input, score_operator
from reference.train_config import TrainConfig
from training.checkpoint import Checkpoint, load_stored_state, restore_rng, rng_state, state_differences
from training.record import RunLog
from training.trainer import init_state, train_step


def _empty_log(steps: int) -> RunLog:
    """A log of ``steps`` zero losses (the machine keeps no log; a checkpoint needs one per step)."""
    zeros = (0.0,) * steps
    return RunLog(LossTrace(**dict.fromkeys(LOSS_FIELDS, zeros)), (), (), (), ())


N_DATA = 16
PROBE = 8
BATCH = 8


class GrowthMachine(RuleBasedStateMachine):
    """The trainer's phases as rules; the proved claims as invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.ctx: Context
        self.state: TrainerState
        self.probe: Probe
        self.x: np.ndarray
        self.labels: np.ndarray
        self.rng: np.random.Generator
        self.last: tuple[InvariantRecord, ...] = ()
        self.last_kind: str = "init"
        self.pruned_heads: tuple[int, ...] = ()
        self.pruned_prototypes: tuple[int, ...] = ()
        self.births = 0
        self.report = True  # hypothesis.event() only exists inside a hypothesis test

    @initialize(
        seed=st.integers(0, 2**16 - 1),
        d=st.integers(2, 6),
        T=st.integers(2, 4),
        K=st.integers(2, 4),
        d_k=st.integers(1, 3),
        optimizer=st.sampled_from(["sgd", "adam"]),
        c_theta=st.floats(0.02, 0.5),
        phi_ratio=st.floats(0.01, 100.0),
        T_d=st.integers(0, 1),
        T_prune=st.integers(1, 2),
        eps_K=st.floats(0.0, 0.6),
    )
    def setup(
        self,
        seed: int,
        d: int,
        T: int,
        K: int,
        d_k: int,
        optimizer: str,
        c_theta: float,
        phi_ratio: float,
        T_d: int,
        T_prune: int,
        eps_K: float,
    ) -> None:
        self.rng = np.random.default_rng(seed)
        layer = LayerConfig(d_in=3, d=d, d_k=d_k, d_v=2, seq_len=T, K_max=K, n_classes=2, T_P=1.0, lambda_q=0.5)
        tcfg = TrainConfig(
            steps=1,
            batch_size=BATCH,
            optimizer="sgd" if optimizer == "sgd" else "adam",
            probe_size=PROBE,
            c_theta=c_theta,
            T_d=T_d,
            T_prune=T_prune,
            eps_K=eps_K,
            seed=seed,
        )
        self.x = arr(self.rng.standard_normal((N_DATA, T, 3)))
        self.labels = self.rng.integers(0, 2, size=N_DATA, dtype=np.int64)
        self.state = init_state(layer, tcfg, rng=self.rng)
        self.probe = Probe(x=arr(self.x[:PROBE].copy()), labels=self.labels[:PROBE].copy())
        gcfg, _ = calibrate(self.state.params, tcfg, [self.probe])
        gcfg = replace(gcfg, phi_g=phi_ratio * gcfg.theta)
        self.ctx = Context(layer_cfg=layer, train_cfg=tcfg, growth_cfg=gcfg)

    def _done(self, kind: str, records: tuple[InvariantRecord, ...], events: tuple[GrowthEvent, ...] = ()) -> None:
        self.last_kind = kind
        self.last = records
        self.pruned_heads = tuple(e.head_id for e in events if e.kind is EventKind.HEAD_PRUNE and e.head_id is not None)
        self.pruned_prototypes = tuple(
            e.prototype_id for e in events if e.kind is EventKind.PROTOTYPE_PRUNE and e.prototype_id is not None
        )
        born = sum(1 for e in events if e.kind is EventKind.BIRTH)
        self.births += born
        happened = (
            ("birth", born > 0),
            ("head prune", bool(self.pruned_heads)),
            ("prototype prune", bool(self.pruned_prototypes)),
        )
        for what, yes in happened:
            if yes and self.report:
                event(what)  # reported by --hypothesis-show-statistics: the paths explored

    # -- rules ---------------------------------------------------------------------------------------

    @rule(k=st.integers(1, 3))
    def train(self, k: int) -> None:
        records: list[InvariantRecord] = []
        for _ in range(k):
            idx = self.rng.choice(N_DATA, size=BATCH, replace=False)
            self.state, _, recs = train_step(self.ctx, self.state, arr(self.x[idx]), self.labels[idx])
            records.extend(recs)
        self._done("train", tuple(records))

    @rule()
    def grow(self) -> None:
        out = phases.grow(self.ctx, self.state, self.probe)
        self.state = out.state
        self._done("grow", out.invariants, out.events)

    @rule()
    def prune(self) -> None:
        out = phases.prune(self.ctx, self.state, self.probe)
        self.state = out.state
        self._done("prune", out.invariants, out.events)

    @rule()
    def prune_prototypes(self) -> None:
        out = phases.prune_prototypes(self.ctx, self.state, self.probe)
        self.state = out.state
        self._done("prune_prototypes", out.invariants, out.events)

    @rule()
    def checkpoint_and_restore(self) -> None:
        """Save the trainer state, the probe and the generator to a checkpoint file, load it back and
        carry on from the loaded copy: the state must come back bit for bit (exact resume). The machine
        applies phases no training loop ordered (a birth without a logged check), so the state is read
        back with ``load_stored_state``, which checks every field and the state against itself but not
        against a run's log (``Checkpoint.load`` adds that check, tested in test_checkpoint)."""
        ck = Checkpoint(
            layer_config=self.ctx.layer_cfg,
            train_config=self.ctx.train_cfg,
            growth_config=self.ctx.growth_cfg,
            calibration_norms=(),
            dataset="state-machine",
            dataset_fingerprint="-",
            engine="reference",
            state=self.state,
            probe=self.probe,
            rng_state=rng_state(self.rng),
            log=_empty_log(self.state.step),
            n_violations=0,
            lam_last=None,
            elapsed_s=0.0,
        )
        with tempfile.TemporaryDirectory() as tmp:
            back = load_stored_state(ck.save(Path(tmp) / "machine.ckpt.npz"))
        assert state_differences(self.state, back.state) == []
        assert back.probe.x.tobytes() == self.probe.x.tobytes()
        rng = restore_rng(back.rng_state)
        assert rng.bit_generator.state == self.rng.bit_generator.state
        self.state, self.probe, self.rng = back.state, back.probe, rng
        self._done("checkpoint", ())

    @rule(scale=st.sampled_from([1.0, 0.05, 3.0]), start=st.integers(0, N_DATA - PROBE))
    def change_probe(self, scale: float, start: int) -> None:
        sl = slice(start, start + PROBE)
        self.probe = Probe(x=arr(scale * self.x[sl]), labels=self.labels[sl].copy())
        self._done("change_probe", ())

    # -- invariants ----------------------------------------------------------------------------------

    def _assert_recorded(self, claim: str) -> None:
        assert_all(r.result for r in self.last if r.result.claim_id == claim)

    @invariant()
    def g1_captured_basis(self) -> None:
        s = self.state
        assert_all(check_g1(Q_cap=s.growth.Q_cap, ranks=s.ranks, theta=self.ctx.growth_cfg.theta))
        self._assert_recorded("G1")
        assert len(s.ranks) - 1 == self.births == s.growth.m <= self.ctx.layer_cfg.d
        assert sorted(s.params.heads) == sorted(s.growth.head_ids)

    @invariant()
    def g5_pruning_safety(self) -> None:
        self._assert_recorded("G5")
        if not self.pruned_heads:
            return
        n_g5 = sum(1 for r in self.last if r.result.claim_id == "G5")
        assert n_g5 >= 6 * len(self.pruned_heads) + 1, n_g5
        # independent of the trainer: the growth test on the same probe, right after the prune
        s = self.state
        X = layer_input(s.params, self.probe.x)
        C = second_moment(arr(X.reshape(-1, X.shape[-1])))
        M_a = directional_operator([score_operator(s.params.heads[h]) for h in sorted(s.params.heads)])
        A_res = residual_operator(C, M_a, s.growth.Q_cap)
        _, events = grow_check(
            s.growth, replace(self.ctx.growth_cfg, T_d=0), A_res, s.step, new_head_id=s.params.next_head_id
        )
        births = [e for e in events if e.kind is EventKind.BIRTH]
        ties = [e for e in events if e.kind is EventKind.NEAR_TIE]
        assert not births or ties, f"G5: growth re-triggered right after pruning {self.pruned_heads}: {births}"

    @invariant()
    def d1_decomposition_on_probe(self) -> None:
        self._assert_recorded("D1")
        if self.last_kind == "train":
            assert len(self.last) % 3 == 0
            assert self.last
        cache = forward(self.state.params, self.ctx.layer_cfg, self.probe.x, self.probe.labels)
        assert_all(d1_decomposition(Y=cache.tokens(), P=self.state.params.P, Q=cache.Q))

    @invariant()
    def d5_prototype_pruning(self) -> None:
        self._assert_recorded("D5")
        n_d5 = sum(1 for r in self.last if r.result.claim_id == "D5")
        assert n_d5 == 3 * len(self.pruned_prototypes)
        assert tuple(self.state.params.prototype_ids) == self.state.growth.prototype_ids


GrowthMachine.TestCase.settings = settings(stateful_step_count=40)
TestGrowthMachine = GrowthMachine.TestCase


def test_the_machine_reaches_births_and_both_kinds_of_prune() -> None:
    """A fixed rule sequence that must birth, prune a head and prune a prototype, with every invariant
    checked after each rule (so the invariants above are not vacuous on the paths that matter)."""
    m = GrowthMachine()
    m.report = False
    m.setup(seed=3, d=4, T=3, K=4, d_k=2, optimizer="adam", c_theta=0.1, phi_ratio=1.0, T_d=0, T_prune=1, eps_K=0.45)
    kinds: list[str] = []

    def run(rule: str, *args: float) -> None:
        getattr(m, rule)(*args)
        kinds.append(m.last_kind)
        for check in (m.g1_captured_basis, m.g5_pruning_safety, m.d1_decomposition_on_probe, m.d5_prototype_pruning):
            check()

    run("train", 2)
    run("grow")
    assert m.births == 1
    run("change_probe", 0.05, 0)  # C shrinks by ~400x: every G_h and λ_max fall far below θ and φ_g
    run("prune")
    assert m.pruned_heads, "the small probe makes the newborn head prunable"
    assert any(r.result.check.startswith("no re-trigger") for r in m.last)
    run("change_probe", 1.0, 8)
    run("prune_prototypes")
    assert m.pruned_prototypes, "ε_K = 0.45 prunes at least one of 4 prototypes"
    run("train", 1)
