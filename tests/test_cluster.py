"""The cluster study (ddcl_incrt.studies.cluster, docs/studies/cluster.md): its metrics on hand-made
cases, its hand-written gradients against central differences, a tiny run of every setting with D1
holding at every step, a planted D1 violation caught, the CLI's three files, and bad input refused."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ddcl_incrt.cli import main
from ddcl_incrt.studies import cluster
from reference import ddcl
from reference._arrays import F64Array, arr
from reference.dcl import best_rate_residual
from reference.gradcheck import central_difference, gradient_matches
from reference.invariants.ddcl import REFERENCE_OPS

TINY = cluster.Protocol(steps=6, batch=16, anchors=12, hidden=4)


def _tiny_dataset(seed: int = 0) -> cluster.Dataset:
    """Three separated 2-d groups of 10 points (k = 3), standardised."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    X = np.vstack([c + 0.3 * rng.standard_normal((10, 2)) for c in centres])
    return cluster.Dataset("tiny", cluster.standardise(arr(X)), np.repeat(np.arange(3), 10).astype(np.int64), 3)


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def test_accuracy_of_a_permuted_labelling_is_one() -> None:
    truth = np.array([0, 0, 1, 1, 2, 2, 2])
    relabelled = np.array([2, 2, 0, 0, 1, 1, 1])  # the same partition under the names 0→2, 1→0, 2→1
    m = cluster.cluster_metrics(truth, relabelled)
    assert m == {"acc": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}


def test_accuracy_of_a_known_confusion() -> None:
    # Contingency (cluster × class): [[2, 0], [1, 3]]: the best matching keeps 2 + 3 of 6 points.
    truth = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([0, 0, 1, 1, 1, 1])
    assert cluster.clustering_accuracy(truth, pred) == pytest.approx(5 / 6)
    # More clusters than classes: every point its own cluster matches one point per class.
    assert cluster.clustering_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 3])) == 0.5
    # One cluster for two equal classes: half the points.
    assert cluster.clustering_accuracy(np.array([0, 0, 1, 1]), np.array([5, 5, 5, 5])) == 0.5


def test_metrics_refuse_bad_labelings() -> None:
    with pytest.raises(ValueError, match="labels_pred"):
        cluster.cluster_metrics(np.array([0, 1, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels_true"):
        cluster.clustering_accuracy(np.array([0.0, 1.0]), np.array([0, 1]))


def test_standardise_zeroes_constant_features() -> None:
    X = arr(np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]]))
    Z = cluster.standardise(X)
    np.testing.assert_array_equal(Z[:, 1], 0.0)
    assert Z[:, 0].mean() == pytest.approx(0.0)
    assert Z[:, 0].std() == pytest.approx(1.0)


def test_madelon_shape_follows_the_protocol() -> None:
    data = cluster.make_dataset("madelon-50", 3)
    assert data.X.shape == (100, 50)
    assert data.k == 2
    assert set(np.unique(data.labels)) == {0, 1}


# --------------------------------------------------------------------------------------------------
# Gradients of every setting against central differences
# --------------------------------------------------------------------------------------------------


def _loss_in(
    s: cluster.Setting, params: cluster.Params, name: str, X: F64Array, X_b: F64Array, T_P: float
) -> Callable[[F64Array], float]:
    """The step's loss as a function of parameter ``name`` alone (the others held)."""
    return lambda v: cluster.step_loss(s, {**params, name: v}, X, X_b, T_P)


@pytest.mark.parametrize("setting_name", list(cluster.SETTINGS))
def test_step_gradients_match_central_differences(setting_name: str) -> None:
    setting = cluster.SETTINGS[setting_name]
    # The backbone setting also with the free dictionary and with L_OLS, so every path is covered.
    variants = [setting]
    if setting.backbone:
        variants += [replace(setting, prototypes="free"), replace(setting, loss="L_OLS")]
    data = _tiny_dataset()
    rng = np.random.default_rng(7)
    for s in variants:
        params, X_b, _ = cluster.initial_params(s, data, TINY, seed=1)
        # Move off the initialisation: W₂ = 0 would make ∂/∂W₁ vanish identically, one-hot W is special.
        params = {k: arr(v + 0.3 * rng.standard_normal(v.shape)) for k, v in params.items()}
        X = arr(data.X[:9])
        T_P = 0.7
        grads, _, _ = cluster.step_gradients(s, params, X, X_b, T_P)
        assert sorted(grads) == sorted(params)
        value = cluster.step_loss(s, params, X, X_b, T_P)
        for name in params:
            numeric = central_difference(_loss_in(s, params, name, X, X_b, T_P), params[name])
            assert gradient_matches(grads[name], numeric, value_scale=value), (s, name)


def test_the_gradient_check_can_fail() -> None:
    """A sign error in the L_OLS gradient's softmax term is caught by the same comparison."""
    data = _tiny_dataset()
    Y, P = arr(data.X[:8]), arr(data.X[[0, 12, 25]].T.copy())
    _gY, gP = cluster.ols_gradients(Y, P, 0.7)
    Q = ddcl.assignments(Y, P, 0.7)
    direct_P = -(2.0 / Y.shape[0]) * ((Y - Q @ P.T).T @ Q)  # the direct term alone: the softmax term dropped
    numeric = central_difference(lambda v: ddcl.ols_loss(Y, v, ddcl.assignments(Y, v, 0.7)), P)
    assert gradient_matches(gP, numeric)
    assert not gradient_matches(arr(direct_P), numeric)


def test_dcl_and_free_prototypes_start_at_the_same_points() -> None:
    data = _tiny_dataset()
    p_free, X_b, _ = cluster.initial_params(cluster.SETTINGS["free"], data, TINY, seed=4)
    p_dcl, X_b2, rates = cluster.initial_params(cluster.SETTINGS["ddcl"], data, TINY, seed=4)
    np.testing.assert_array_equal(X_b, X_b2)
    np.testing.assert_array_equal(p_free["P"], cluster.prototypes(p_dcl, X_b))
    assert rates["W"] == TINY.lr_prototypes / X_b.shape[0]


def test_temperature_schedules() -> None:
    T_c, S, r = 8.0, 100, 0.1
    assert cluster.temperature(T_c, 37, S, annealed=False, ratio=r) == pytest.approx(0.8)
    annealed = [cluster.temperature(T_c, t, S, annealed=True, ratio=r) for t in range(S)]
    assert annealed[0] == T_c
    assert annealed[25] == pytest.approx(T_c * r**0.5)
    assert all(a >= b for a, b in itertools.pairwise(annealed))
    assert annealed[50:] == [pytest.approx(0.8)] * 50


def test_the_addendum_settings_change_one_factor_each() -> None:
    """docs/studies/cluster.md, "Protocol addendum": each new setting differs from the row it is compared
    with in the one factor the protocol names, and the fixed temperatures are 0.02 T_c and T_c."""
    S = cluster.SETTINGS
    base = cluster.Protocol()
    assert (S["backbone-ols"].loss, S["backbone"].loss) == ("L_OLS", "L_q")
    assert replace(S["backbone-ols"], name="x", loss="L_q") == replace(S["backbone"], name="x")
    assert replace(S["backbone-annealed"], name="x", annealed=False) == replace(S["backbone"], name="x")
    for cold, hot, annealed in (
        ("T-cold", "T-hot", "annealed"),
        ("backbone-T-cold", "backbone-T-hot", "backbone-annealed"),
    ):
        assert S[cold].ratio(base) == 0.02  # 0.1 T_c (the schedule's end) / 5, as the paper's 0.1 is 0.5 / 5
        assert S[hot].ratio(base) == 1.0  # the schedule's start, as the paper's 2.0
        assert S[annealed].annealed
        assert S[annealed].ratio(base) == base.temperature_ratio
        for fixed in (cold, hot):
            assert replace(S[fixed], name="x", fixed_ratio=None, annealed=True) == replace(S[annealed], name="x")
    for name in cluster.ORIGINAL_SETTING_NAMES[:-1]:  # the original rows keep the protocol's temperature
        assert S[name].fixed_ratio is None
    assert set(cluster.SETTING_NAMES) == {*cluster.ORIGINAL_SETTING_NAMES, *cluster.ADDENDUM_SETTING_NAMES}
    with pytest.raises(ValueError, match="annealed setting has no fixed_ratio"):
        cluster.Setting("bad", backbone=False, loss="L_q", prototypes="dcl", annealed=True, fixed_ratio=0.5)
    with pytest.raises(ValueError, match="fixed_ratio"):
        cluster.Setting("bad", backbone=False, loss="L_q", prototypes="dcl", annealed=False, fixed_ratio=0.0)


@pytest.mark.parametrize(("setting_name", "ratio"), [("T-cold", 0.02), ("T-hot", 1.0), ("backbone-T-hot", 1.0)])
def test_a_fixed_temperature_setting_trains_at_its_own_temperature(setting_name: str, ratio: float) -> None:
    """The temperature a run ends at is ratio·T_c (T_c on the initial features), not the protocol's 0.1;
    the run's steps see it too: the same run with the setting's ratio replaced by 0.1 differs."""
    data = _tiny_dataset()
    r = cluster.run_one(data, setting_name, 0, TINY)
    assert r.final["T_P"] == pytest.approx(ratio * r.final["T_c"], rel=1e-15)
    assert r.final["T_c"] == pytest.approx(2.0 * np.linalg.eigvalsh(np.cov(data.X.T, bias=True))[-1], rel=1e-12)
    planted = replace(cluster.SETTINGS[setting_name], fixed_ratio=0.1)
    original = cluster.SETTINGS[setting_name]
    try:
        cluster.SETTINGS[setting_name] = planted
        p = cluster.run_one(data, setting_name, 0, TINY)
    finally:
        cluster.SETTINGS[setting_name] = original
    assert p.final["T_P"] == pytest.approx(0.1 * p.final["T_c"], rel=1e-15)
    assert p.final["L_q"] != r.final["L_q"]


def test_paired_counts_on_a_hand_made_document() -> None:
    runs = [
        {"dataset": "a", "setting": "x", "seed": s, "acc": v, "nmi": 0.0, "ari": 0.0}
        for s, v in enumerate((0.5, 0.6, 0.7, 0.8))
    ] + [
        {"dataset": "a", "setting": "y", "seed": s, "acc": v, "nmi": 0.0, "ari": 0.0}
        for s, v in enumerate((0.4, 0.6, 0.9, 0.80004))
    ]
    doc = {"runs": runs, "datasets": ["a"], "settings": ["x", "y"]}
    c = cluster.paired_counts(doc, "a", "x", "y")
    assert (c["W"], c["T"], c["L"]) == (1, 2, 1)  # 0.5 > 0.4; 0.6 = 0.6; 0.7 < 0.9; 0.8 = 0.800 to 3 decimals
    assert c["mean_diff"] == pytest.approx((0.1 + 0.0 - 0.2 - 0.00004) / 4)
    assert cluster.paired_markdown(doc) == ""  # no listed comparison between x and y
    doc2 = {
        "runs": [{**r, "setting": {"x": "backbone-ols", "y": "backbone"}[r["setting"]]} for r in runs],
        "datasets": ["a"],
        "settings": ["backbone-ols", "backbone"],
    }
    assert cluster.paired_markdown(doc2).splitlines()[-1] == "| a | 1W 2T 1L (-0.025) |"


# --------------------------------------------------------------------------------------------------
# Runs, D1 at every step, a planted violation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting_name", cluster.SETTING_NAMES)
def test_a_tiny_run_of_every_setting_completes_with_d1_at_every_step(setting_name: str) -> None:
    data = _tiny_dataset()
    r = cluster.run_one(data, setting_name, 0, replace(TINY, kmeans_n_init=2))
    assert set(r.metrics) == set(cluster.METRICS)
    assert 0.0 <= r.metrics["acc"] <= 1.0
    if setting_name == cluster.KMEANS:
        assert r.d1 == {}
        return
    assert r.d1["checks"] == 3 * TINY.steps  # three D1 results per step: the identity, V ≥ 0, V's pair form
    assert r.d1["violations"] == 0
    assert r.d1["uncertified"] == 0
    assert r.d1["first_violation"] is None
    assert r.d1["min_margin"] >= 0.0
    assert np.isfinite(list(r.final.values())).all()


def test_a_planted_d1_violation_is_detected_at_every_step() -> None:
    """An implementation whose V is 1e-6 too large breaks L_q = L_OLS + V far beyond the rounding bound."""
    broken = replace(REFERENCE_OPS, prototype_variance=lambda P, Q: ddcl.prototype_variance(P, Q) * (1.0 + 1e-6))
    data = _tiny_dataset()
    r = cluster.run_one(data, "ddcl", 0, TINY, ops=broken)
    assert r.d1["violations"] >= TINY.steps  # the identity fails at every step
    assert r.d1["first_violation"].startswith("step 0: [D1]")
    healthy = cluster.run_one(data, "ddcl", 0, TINY)
    assert healthy.d1["violations"] == 0
    assert healthy.metrics == r.metrics


def test_summary_is_mean_and_sample_std_over_seeds() -> None:
    data = _tiny_dataset()
    runs = [cluster.run_one(data, "free", s, TINY) for s in (0, 1, 2)]
    row = cluster.summarise(runs)["tiny"]["free"]
    accs = np.array([r.metrics["acc"] for r in runs])
    assert row["seeds"] == 3
    assert row["acc_mean"] == pytest.approx(accs.mean())
    assert row["acc_std"] == pytest.approx(accs.std(ddof=1))
    assert row["d1_checks"] == 3 * 3 * TINY.steps


# --------------------------------------------------------------------------------------------------
# CLI and bad input
# --------------------------------------------------------------------------------------------------


def test_cli_writes_its_three_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c"
    code = main(["cluster", "--quick", "--seeds", "1", "--datasets", "blobs", "madelon-10", "--out", str(out)])
    assert code == 0
    doc = json.loads((out / "cluster.json").read_text())
    assert len(doc["runs"]) == 2 * len(cluster.SETTING_NAMES)
    assert doc["label"] == "measured"
    assert doc["d1_violations"] == 0
    assert doc["d1_checks"] == 2 * len(cluster.SETTINGS) * 3 * 20
    table = (out / "cluster.md").read_text()
    summary_table = table.split("## ACC of every seed")[0]
    assert sum(line.startswith("| blobs |") for line in summary_table.splitlines()) == len(cluster.SETTING_NAMES)
    assert "## ARI of every seed" in table
    blobs_ddcl = next(
        line for line in table.split("## ACC of every seed")[1].splitlines() if "| blobs | ddcl |" in line
    )
    acc_seed0 = next(r["acc"] for r in doc["runs"] if r["dataset"] == "blobs" and r["setting"] == "ddcl")
    assert blobs_ddcl == f"| blobs | ddcl | {acc_seed0:.3f} |"
    assert (out / "cluster.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    captured = capsys.readouterr()
    assert "madelon-10" in captured.out
    total = 2 * len(cluster.SETTING_NAMES)
    assert f"[{total}/{total}]" in captured.err


def test_cli_refuses_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cluster", "--quick", "--datasets", "mnist", "--out", str(tmp_path)]) == 2
    assert "datasets" in capsys.readouterr().err
    assert not (tmp_path / "cluster.json").exists()
    with pytest.raises(SystemExit):
        main(["cluster", "--seeds", "0"])
    assert "positive integer" in capsys.readouterr().err


def test_bad_arguments_name_the_argument() -> None:
    data = _tiny_dataset()
    with pytest.raises(ValueError, match="setting_name"):
        cluster.run_one(data, "spectral", 0)
    with pytest.raises(ValueError, match="seed"):
        cluster.run_one(data, "ddcl", -1)
    with pytest.raises(ValueError, match="name"):
        cluster.make_dataset("madelon-7", 0)
    with pytest.raises(ValueError, match=r"Protocol\.steps"):
        cluster.Protocol(steps=0)
    with pytest.raises(ValueError, match=r"Protocol\.temperature_ratio"):
        cluster.Protocol(temperature_ratio=1.5)
    with pytest.raises(ValueError, match="seeds"):
        cluster.run_study(["blobs"], seeds=[])
    # a name given twice would be run twice and pooled into one row: refused before any run
    with pytest.raises(ValueError, match=r"datasets: .*once.*blobs"):
        cluster.run_study(["blobs", "moons", "blobs"], seeds=[0])
    with pytest.raises(ValueError, match=r"settings: .*once.*ddcl"):
        cluster.run_study(["blobs"], seeds=[0], settings=("ddcl", "ddcl"))
    with pytest.raises(ValueError, match=r"seeds: .*once.*1"):
        cluster.run_study(["blobs"], seeds=[1, 0, 1])
    with pytest.raises(ValueError, match="metric"):
        cluster.per_seed_markdown({"seeds": [], "runs": [], "datasets": [], "settings": []}, "f1")


def test_merged_documents_give_the_table_of_one_run_and_refuse_a_conflict() -> None:
    """Two runs of the study (different settings), saved as JSON and merged, have the table of one run with
    both settings; a run present in both with different metrics, or another protocol, is refused."""
    proto = replace(TINY, kmeans_n_init=2)
    a = cluster.run_study(["blobs"], (0, 1), proto, ("ddcl", "T-hot"))
    b = cluster.run_study(["blobs"], (0, 1), proto, ("backbone-ols",))
    both = cluster.run_study(["blobs"], (0, 1), proto, ("ddcl", "backbone-ols", "T-hot"))
    merged = cluster.merge_documents(json.loads(json.dumps(a.to_dict())), json.loads(json.dumps(b.to_dict())))
    assert merged.settings == both.settings == ("ddcl", "backbone-ols", "T-hot")
    table = cluster.markdown_table(merged).split("\n\nMean")[0]
    expected = cluster.markdown_table(both).split("\n\nMean")[0]
    strip_time = [line.rsplit("|", 2)[0] for line in table.splitlines()]  # the s-per-run column differs
    assert strip_time == [line.rsplit("|", 2)[0] for line in expected.splitlines()]
    conflicting = a.to_dict()
    conflicting["runs"][0] = {**conflicting["runs"][0], "acc": conflicting["runs"][0]["acc"] - 0.5}
    with pytest.raises(ValueError, match="twice with different metrics"):
        cluster.merge_documents(a.to_dict(), conflicting)
    other = cluster.run_study(["blobs"], (0, 1), replace(proto, steps=4), ("backbone-ols",))
    with pytest.raises(ValueError, match="different protocols"):
        cluster.merge_documents(a.to_dict(), other.to_dict())


def test_best_rate_residual_on_hand_made_directions() -> None:
    """0 for a multiple, 1 for an orthogonal direction, √(1/5)/√13 for (2, 3) against (3, 6) (D6's Adam falsifier)."""
    r = best_rate_residual
    assert r(arr(np.array([[2.0], [3.0]])), arr(np.array([[-4.0], [-6.0]]))) == pytest.approx(0.0, abs=1e-15)
    assert r(arr(np.array([[1.0], [0.0]])), arr(np.array([[0.0], [5.0]]))) == 1.0
    assert r(arr(np.array([[2.0], [3.0]])), arr(np.array([[3.0], [6.0]]))) == pytest.approx(
        np.sqrt(1 / 5) / np.sqrt(13)
    )
    assert np.isnan(r(arr(np.zeros((2, 1))), arr(np.ones((2, 1)))))


def test_dcl_update_residuals_vanish_for_gradient_steps_and_not_for_adam() -> None:
    """The controls: plain gradient steps at one rate move P by exactly a multiple of M∇_P L (D6), and at the
    study's two rates by a multiple of (η_W Y_bᵀY_b + η_b 11ᵀ)∇_P L, not of M∇_P L; Adam's steps by neither."""
    data = _tiny_dataset()
    equal = cluster.dcl_update_residuals(data, "ddcl", 0, TINY, optimiser="sgd-equal-rates")
    assert max(equal["vs_M"]) < 1e-12
    two = cluster.dcl_update_residuals(data, "ddcl", 0, TINY, optimiser="sgd")
    assert max(two["vs_rate_weighted"]) < 1e-12
    assert max(two["vs_M"]) > 1e-3
    adam = cluster.dcl_update_residuals(data, "ddcl", 0, TINY)
    assert min(adam["vs_M"]) > 1e-3
    assert min(adam["vs_rate_weighted"]) > 1e-3
    with pytest.raises(ValueError, match="frozen-feature DCL"):
        cluster.dcl_update_residuals(data, "backbone", 0, TINY)


def test_the_cluster_command_runs_the_settings_it_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ddcl_incrt.cli import main

    args = ["cluster", "--quick", "--seeds", "1", "--datasets", "blobs", "--out", str(tmp_path / "c")]
    assert main([*args, "--settings", "ddcl", "backbone-ols"]) == 0
    document = json.loads((tmp_path / "c" / "cluster.json").read_text())
    assert sorted({run["setting"] for run in document["runs"]}) == ["backbone-ols", "ddcl"]
    capsys.readouterr()
    assert main([*args, "--settings", "no-such-setting"]) == 2
    assert "settings: expected names from" in capsys.readouterr().err
