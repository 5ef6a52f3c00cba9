"""Whole short training trajectories and growth decisions: the accelerated engine against the reference.

Both engines run through :func:`training.trainer.run` with the same ``rng``, so they see the same
minibatches, probes and births; the accelerated engine computes the growth statistics and trackers
on its device. In float64 every discrete decision is identical (births, head prunes, prototype
prunes at the same steps, same ids) up to the first declared near-tie, where the comparison stops and
says so (SPEC §6); losses, every check's statistics and the final parameters agree to the VALUE row,
and both records hold every invariant. The harness is ``tests/_accelerated_harness.py``.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from _accelerated_harness import (  # noqa: E402
    compare_trajectories,
    decisions,
    first_tie,
    run_with,
    tie_differences,
    trajectory_runs,
)

from reference.tolerances import CheckKind, tolerance  # noqa: E402

EVERY_EVENT = {"birth", "head_prune", "prototype_prune"}
# The VALUE row: over these 100 steps the measured worst difference is 4.4e-16 (losses) and 4.2e-16
# (final parameters, scaled), so rounding has not grown through the trajectory at this size.
TRAJECTORY_RTOL = tolerance("float64", CheckKind.VALUE).rtol


@pytest.mark.parametrize(
    ("run_cfg", "required"),
    [
        pytest.param(run_with(), EVERY_EVENT, id="adam"),
        pytest.param(run_with(optimizer="sgd"), {"birth", "prototype_prune"}, id="sgd"),
    ],
)
def test_float64_trajectory_matches_the_reference(run_cfg: object, required: set[str]) -> None:
    ref, acc = trajectory_runs(run_cfg)  # type: ignore[arg-type]
    kinds = {k for _, k, _, _ in decisions(ref)}
    assert required <= kinds, f"the case must exercise {sorted(required)}, got {sorted(kinds)}"
    cmp = compare_trajectories(ref, acc, TRAJECTORY_RTOL)
    assert cmp.stopped_at is None, f"near-tie at step {cmp.stopped_at}: the comparison stopped there; pick another case"
    assert cmp.differences == ()
    assert acc.violations() == ()
    assert {k: v.count for k, v in acc.summary().items()} == {k: v.count for k, v in ref.summary().items()}


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_float32_trajectory_matches_the_float64_reference(optimizer: str) -> None:
    """Training in float32 (checks in float64, see accelerated.growth_phases) against the float64
    reference: decisions identical and every loss, check statistic and final parameter within the
    float32 VALUE row, up to the first check whose statistic lies within float32's DECISION row of
    its threshold (measured over these 100 steps: losses 9e-8, decisions identical, no such check)."""
    ref, acc = trajectory_runs(run_with(optimizer=optimizer), dtype=torch.float32)
    cmp = compare_trajectories(ref, acc, tolerance("float32", CheckKind.VALUE).rtol, band="float32")
    assert cmp.stopped_at is None, f"float32 near-tie at step {cmp.stopped_at}; pick another case"
    assert cmp.differences == ()
    assert acc.violations() == ()


def test_growth_decisions_agree_at_exact_ties_and_at_the_dwell_boundary() -> None:
    assert tie_differences() == []


def test_decisions_are_compared_only_up_to_the_first_near_tie() -> None:
    """Engines that round differently may decide differently at a near-tie, so the comparison stops
    there (SPEC §6). Planted on copies of one record: decisions dropped after a check are reported;
    with a near-tie declared at that check they are not, and the comparison says where it stopped. In
    float32 a check statistic within float32's DECISION row of its threshold stops it likewise."""
    from dataclasses import replace

    from _small_run import small_run

    from reference.incrt.controller import EventKind, GrowthEvent

    ref = small_run()
    tie_step = ref.checks[1].step
    assert any(e.step > tie_step for e in ref.events), "the case needs a decision after the tie"
    before = tuple(e for e in ref.events if e.step <= tie_step)
    assert compare_trajectories(ref, replace(ref, events=before), TRAJECTORY_RTOL).differences != ()
    theta = ref.growth_config.theta
    tie = GrowthEvent(tie_step, EventKind.NEAR_TIE, theta, theta, 0.0, "grow")
    cmp = compare_trajectories(ref, replace(ref, events=(*before, tie)), TRAJECTORY_RTOL)
    assert (cmp.stopped_at, cmp.differences) == (tie_step, ())

    assert first_tie(ref, "float32") is None
    near = replace(ref.checks[1], lam_max=theta * (1.0 + 0.1 * tolerance("float32", CheckKind.DECISION).rtol))
    near_record = replace(ref, checks=(ref.checks[0], near, *ref.checks[2:]))
    assert (first_tie(near_record, "float32"), first_tie(near_record, "float64")) == (tie_step, None)


def test_a_diverged_state_is_refused_at_the_next_check_naming_the_parameter() -> None:
    """Issue 10 finding 12 on the accelerated engine: a step has no host sync, so non-finite
    parameters are caught where the growth check syncs anyway, before anything is computed from them."""
    from dataclasses import replace

    import numpy as np
    from _small_run import LAYER, RUN, small_data

    from accelerated.trainer import AcceleratedEngine
    from reference.growth_phases import Context, calibrate
    from reference.growth_statistics import Probe
    from training.trainer import init_state

    data = small_data()
    state = init_state(LAYER, RUN, rng=np.random.default_rng(0))
    probe = Probe(x=data.x_train[:8], labels=data.labels_train[:8])
    growth_cfg, _ = calibrate(state.params, RUN, [])
    ctx = Context(layer_cfg=LAYER, train_cfg=RUN, growth_cfg=growth_cfg)
    engine = AcceleratedEngine(torch.float32)
    es = engine.start(ctx, state)
    engine.check(ctx, es, probe)  # finite: the check runs
    P = es.params.P.detach().clone()
    P[0, 0] = float("inf")
    with pytest.raises(FloatingPointError, match=r"params\['P'\].*diverged"):
        engine.check(ctx, replace(es, params=replace(es.params, P=P)), probe)


@pytest.mark.parametrize(
    ("layer_change", "head_s", "name"),
    [({"T_P": 1e-39}, None, "T_P"), ({"s_init": 88.0}, None, "s_init"), ({}, -88.0, r"params.heads\[0\].s")],
)
def test_float32_training_refuses_temperatures_float32_cannot_hold(
    layer_change: dict[str, float], head_s: float | None, name: str
) -> None:
    """Valid in float64 (the reference's ranges), outside float32's: T_P below its smallest normal
    (1.2e-38), |s| above −log(tiny) = 87.3. Refused at the start, naming the value; float64 accepts them."""
    from dataclasses import replace

    import numpy as np
    from _small_run import LAYER, RUN

    from accelerated.trainer import AcceleratedEngine
    from reference.growth_phases import Context, calibrate
    from training.trainer import init_state

    layer = replace(LAYER, **layer_change)
    state = init_state(layer, RUN, rng=np.random.default_rng(0))
    if head_s is not None:
        head = replace(state.params.heads[0], s=np.float64(head_s))
        state = replace(state, params=replace(state.params, heads={0: head}))
    ctx = Context(layer_cfg=layer, train_cfg=RUN, growth_cfg=calibrate(state.params, RUN, [])[0])
    AcceleratedEngine(torch.float64).start(ctx, state)
    with pytest.raises(ValueError, match=name):
        AcceleratedEngine(torch.float32).start(ctx, state)


def test_a_head_surgery_not_applied_to_the_optimiser_state_is_refused_at_the_next_step() -> None:
    """The stacked moments' rows are matched to heads by position: parameters whose head ids are not the
    state's (a birth and a prune applied to the parameters only: same row count, other heads) are
    refused, naming both, instead of training each head with another head's moments."""
    from dataclasses import replace

    import numpy as np
    from _small_run import LAYER, RUN, TRAIN_SEED

    from accelerated import growth_phases as acc_gp
    from accelerated.trainer import AcceleratedEngine
    from reference.growth_phases import Context
    from reference.incrt.controller import GrowthConfig
    from reference.surgery import head_param_names
    from training.trainer import init_state

    ctx = Context(LAYER, RUN, GrowthConfig(theta=1.0, phi_g=0.0, T_d=1, T_prune=1, eps_K=0.0))
    engine = AcceleratedEngine()
    es = engine.start(ctx, init_state(LAYER, RUN, rng=np.random.default_rng(TRAIN_SEED)))
    born, hid = acc_gp.add_head(es.params, LAYER, rng=np.random.default_rng(0))
    moved = replace(es, params=acc_gp.remove_head(born, 0))
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((2, LAYER.seq_len, LAYER.d_in)), np.array([0, 1])
    grads = engine.gradients(ctx, moved, x, labels)[0]
    with pytest.raises(ValueError, match=r"opt_state: moment rows are for heads \(0,\), params have \(1,\)"):
        engine.apply_gradients(ctx, moved, grads)
    applied = replace(moved, opt_state=es.opt_state.with_head(hid).without(head_param_names(0)))
    assert engine.apply_gradients(ctx, applied, grads).step == es.step + 1
