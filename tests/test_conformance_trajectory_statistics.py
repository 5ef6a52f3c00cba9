"""The kit's trajectories see the statistics, not only the decisions they led to: every check's
``λ_max``, each head's ``G_h`` and the captured projector ``Q_cap Q_capᵀ`` are compared with the VALUE
row (docs/porting.md, Encodings). A port with a wrong second moment or a wrong captured direction in
its training run makes the same decisions and the same losses here, and fails only on them."""

from __future__ import annotations

import numpy as np
import pytest

from ddcl_incrt.conformance import broken
from ddcl_incrt.conformance.adapter import TrajectoryInputs, TrajectoryOutputs
from ddcl_incrt.conformance.adapters.reference import ReferenceAdapter
from ddcl_incrt.conformance.cases import TRAJECTORY_CHECK_FIELDS, decode_trajectory
from ddcl_incrt.conformance.compare import TolerancePolicy
from ddcl_incrt.conformance.operations import call_port, compare_case
from ddcl_incrt.conformance.trajectory import run_trajectory
from ddcl_incrt.conformance.vectors import GOLDEN_DIR, VectorEntry, read_vectors
from reference.incrt.operators import fix_sign
from reference.tolerances import CheckKind, tolerance
from training.trainer import ReferenceEngine

RTOL = tolerance("float64", CheckKind.VALUE).rtol


def _entry(check: str) -> VectorEntry:
    (entry,) = [e for e in read_vectors(GOLDEN_DIR) if e.case.check == check]
    assert entry.outputs is not None
    return entry


@pytest.fixture(scope="module")
def short_run() -> VectorEntry:
    return _entry("trajectory/short_run")


@pytest.fixture(scope="module")
def near_tie() -> VectorEntry:
    return _entry("trajectory/near_tie")


def _fields(result_fields: object) -> dict[str, float]:
    return {f.field: f.ratio for f in result_fields}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("factory", "caught_by"),
    [("second_moment_unbiased", {"checks.lam_max", "checks.G_h"}), ("top_eigenvector_as_row", {"checks.projector"})],
)
def test_a_statistics_bug_in_the_training_run_fails_the_trajectory_on_the_statistics_alone(
    short_run: VectorEntry, factory: str, caught_by: set[str]
) -> None:
    """Same events, same losses, same final parameters (no decision flips in this run): before the
    statistics were compared these ports passed the trajectory."""
    assert short_run.outputs is not None
    port = getattr(broken, factory)()
    result = compare_case(short_run.case, call_port(port, short_run.case), short_run.outputs, TolerancePolicy())
    ratios = _fields(result.fields)
    assert result.status == "fail"
    failed = {name for name, r in ratios.items() if r > 1.0}
    assert caught_by <= failed, result.message
    assert failed <= set(TRAJECTORY_CHECK_FIELDS), result.message  # nothing else differs
    assert ratios["events"] == 0.0
    assert ratios["losses"] <= 1.0


class _FlippedBackend(broken._PortBackend):
    def top_eigenvector(self, V: np.ndarray) -> np.ndarray:
        return np.asarray(-fix_sign(V[:, -1]), dtype=np.float64)  # the reference's u₊, negated


class _SignFlippedCapture(ReferenceAdapter):
    """A correct port whose eigen-solver returns ``−u₊``: the captured basis differs in sign, the subspace
    does not, and the kit compares the subspace."""

    name = "sign-flipped top eigenvector"

    def trajectory(self, inputs: TrajectoryInputs) -> TrajectoryOutputs:
        return run_trajectory(broken._PortEngine(_FlippedBackend()), inputs)[0]


def test_the_captured_subspace_is_compared_sign_free(short_run: VectorEntry) -> None:
    assert short_run.outputs is not None
    result = compare_case(
        short_run.case, call_port(_SignFlippedCapture(), short_run.case), short_run.outputs, TolerancePolicy()
    )
    assert result.status == "pass", result.message
    # its captured basis really has the other sign: the projector is what made it pass
    inputs = decode_trajectory(short_run.case)
    ours = _SignFlippedCapture().trajectory(inputs).checks
    ref = run_trajectory(ReferenceEngine(), inputs)[0].checks
    first = next(i for i, c in enumerate(ref) if c.Q_cap.shape[1] == 1)
    assert np.allclose(ours[first].Q_cap, -ref[first].Q_cap, rtol=0.0, atol=1e-12)
    assert not np.allclose(ours[first].Q_cap, ref[first].Q_cap, rtol=0.0, atol=1e-3)


def _perturbed(outputs: dict[str, np.ndarray], name: str, index: tuple[int, ...]) -> dict[str, np.ndarray]:
    a = np.array(outputs[name], dtype=np.float64)
    a[index] += 4.0 * RTOL * max(float(np.max(np.abs(a))), 1.0)
    return {**outputs, name: a}


@pytest.mark.parametrize(
    ("name", "index"),
    [("checks.lam_max", (0,)), ("checks.G_h", (2,)), ("checks.projector", (0, 1, 2))],
)
def test_each_statistic_fails_past_the_value_row(short_run: VectorEntry, name: str, index: tuple[int, ...]) -> None:
    """Four times the VALUE row on one entry of one field fails that field and only it; the reference's
    own outputs pass."""
    assert short_run.outputs is not None
    reference = dict(short_run.outputs)
    mine = {k: v for k, v in reference.items() if not k.startswith("ref.")}
    assert compare_case(short_run.case, mine, reference, TolerancePolicy()).status == "pass"
    result = compare_case(short_run.case, _perturbed(mine, name, index), reference, TolerancePolicy())
    assert {f.field for f in result.fields if not f.ok} == {name}, result.message


def test_a_port_that_does_not_report_its_statistics_fails_naming_each(short_run: VectorEntry) -> None:
    assert short_run.outputs is not None
    mine = {k: v for k, v in short_run.outputs.items() if not k.startswith(("ref.", "checks."))}
    result = compare_case(short_run.case, mine, short_run.outputs, TolerancePolicy())
    assert result.status == "fail"
    assert {f.field for f in result.fields if f.label == "missing"} == set(TRAJECTORY_CHECK_FIELDS)


def test_at_a_near_tie_the_statistics_are_compared_up_to_the_ties_check_and_not_after(near_tie: VectorEntry) -> None:
    """The tie is at the check of step 20 (rows: checks at 10, 20, 30, 40; heads at 10: [0], at 20: [0, 1]).
    Its own λ_max and G_h were measured before its decision and are compared; its projector (after the
    decision) and everything of the later checks are not, but must be finite."""
    assert near_tie.outputs is not None
    reference = dict(near_tie.outputs)
    mine = {k: v for k, v in reference.items() if not k.startswith("ref.")}
    steps = [int(s) for s in reference["checks.step"]]
    assert steps == [10, 20, 30, 40]
    compared = [("checks.lam_max", (1,)), ("checks.G_h", (2,)), ("checks.projector", (0, 0, 0))]
    not_compared = [("checks.lam_max", (2,)), ("checks.G_h", (4,)), ("checks.projector", (1, 0, 0))]
    for name, index in compared:
        result = compare_case(near_tie.case, _perturbed(mine, name, index), reference, TolerancePolicy())
        assert {f.field for f in result.fields if not f.ok} == {name}, (name, index, result.message)
    for name, index in not_compared:
        result = compare_case(near_tie.case, _perturbed(mine, name, index), reference, TolerancePolicy())
        assert result.status == "pass", (name, index, result.message)
    bad = np.array(mine["checks.G_h"], dtype=np.float64)
    bad[-1] = np.nan
    result = compare_case(near_tie.case, {**mine, "checks.G_h": bad}, reference, TolerancePolicy())
    assert [f.label for f in result.fields if not f.ok] == ["non-finite"], result.message
