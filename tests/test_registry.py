"""The claim registry: complete against SPEC §4, consistent with proofs_check and docs/theory.md; every
hypothesis of a proved claim has a falsifier or a stated reason why none can exist, and every falsifier
really drops its hypothesis and really breaks the conclusion — as decided by the claim's conclusion
predicate, the code that checks it in training."""

from __future__ import annotations

import dataclasses
import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CLAIM_TESTS, COLLECTED_FILES

from ddcl_incrt.claim_tests import ClaimTests, collect_claim_tests, missing_claim_tests
from proofs_check import ALL_STEPS
from reference.claims.records import Claim, Counterexample, Falsifier, Label
from reference.claims.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
THEORY = ROOT / "docs" / "theory.md"

# Claims that exist as records but are not implemented yet. Listed here on purpose, so that they cannot
# be forgotten: implementing one means removing it from this set (the test fails until you do).
NOT_YET_IMPLEMENTED: set[str] = set()
# proofs_check steps that support the model rather than one claim of SPEC §4 (backprop formulas).
SUPPORTING_STEP_GROUPS = {"BP"}


# The registry against the claims list of docs/spec.md: tests/test_spec_doc.py.


def test_not_yet_implemented_claims_are_listed() -> None:
    assert {c.id for c in REGISTRY.values() if not c.implemented} == NOT_YET_IMPLEMENTED


@pytest.mark.parametrize("claim", [c for c in REGISTRY.values() if c.implemented], ids=lambda c: c.id)
def test_implemented_claims_are_complete(claim: Claim) -> None:
    if claim.label is Label.PROVED:
        assert claim.invariant is not None
        assert claim.sympy_steps, f"{claim.id}: a proved claim needs sympy steps"
        assert claim.hypotheses, f"{claim.id}: a proved claim states its hypotheses"
    for name in claim.code:
        module, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(module), attr, None)
        assert obj is not None, f"{claim.id}: {name} does not exist"
        assert obj.__module__ == module, f"{claim.id}: name {name} in its defining module {obj.__module__}"


def test_sympy_steps_match_proofs_check_both_ways() -> None:
    step_ids = {s.id for s in ALL_STEPS}
    assert len(step_ids) == len(ALL_STEPS), "duplicate step ids in proofs_check"
    for claim in REGISTRY.values():
        missing = set(claim.sympy_steps) - step_ids
        assert not missing, f"{claim.id} names steps that proofs_check lacks: {missing}"
        listed = {s.id for s in ALL_STEPS if s.claim == claim.id}
        assert listed == set(claim.sympy_steps), f"{claim.id}: registry and proofs_check disagree"
    orphans = {s.claim for s in ALL_STEPS} - set(REGISTRY) - SUPPORTING_STEP_GROUPS
    assert not orphans, f"proofs_check steps of unknown claims: {orphans}"


PROVED = [c for c in REGISTRY.values() if c.label is Label.PROVED and c.implemented]
FALSIFIERS = [pytest.param(c, f, marks=pytest.mark.claim(c.id, "falsifier")) for c in PROVED for f in c.falsifiers]


@pytest.mark.parametrize("claim", PROVED, ids=lambda c: c.id)
def test_every_hypothesis_has_a_falsifier_or_a_stated_reason(claim: Claim) -> None:
    """(a) Each hypothesis of a proved claim is covered exactly once: one falsifier, or one reason why none
    can exist (never both); and the claim has a conclusion predicate to feed counterexamples through."""
    assert claim.conclusion is not None, f"{claim.id}: no conclusion predicate"
    dropped = [f.hypothesis for f in claim.falsifiers]
    assert len(dropped) == len(set(dropped)), f"{claim.id}: two falsifiers drop the same hypothesis"
    assert not set(dropped) & set(claim.no_falsifier), f"{claim.id}: a falsifier and a reason for the same hypothesis"
    assert set(dropped) | set(claim.no_falsifier) == {h.name for h in claim.hypotheses}, claim.id
    for name, reason in claim.no_falsifier.items():
        assert len(reason) > 80, f"{claim.id}/{name}: state the reason (what fails without it: definedness, not truth)"


def counterexample_problems(claim: Claim, falsifier: Falsifier) -> list[str]:
    """What is wrong with a falsifier's counterexample (empty: it is one). The dropped hypothesis must be
    false on its inputs and every other one true; the claim's conclusion predicate must be false there and
    agree with the falsifier's own ``conclusion_fails``."""
    ce = falsifier.run()
    problems: list[str] = []
    if ce.claim_id != claim.id or ce.hypothesis_dropped != falsifier.hypothesis:
        problems.append(f"labelled {ce.claim_id}/{ce.hypothesis_dropped}")
    holds = claim.hypotheses_hold(**ce.inputs)
    if holds[falsifier.hypothesis]:
        problems.append(f"the counterexample satisfies {falsifier.hypothesis}")
    also = [k for k, v in holds.items() if k != falsifier.hypothesis and not v]
    if also:
        problems.append(f"the counterexample also violates {also}")
    concluded = claim.conclusion_holds(**ce.inputs)
    if concluded:
        problems.append(f"the conclusion holds without {falsifier.hypothesis}: {ce.observed}")
    if ce.conclusion_fails != (not concluded):
        problems.append(f"conclusion_fails={ce.conclusion_fails} but the conclusion predicate says {concluded}")
    return problems


@pytest.mark.parametrize(
    ("claim", "falsifier"), FALSIFIERS, ids=lambda x: getattr(x, "id", getattr(x, "hypothesis", ""))
)
def test_falsifiers_drop_exactly_one_hypothesis_and_break_the_conclusion(claim: Claim, falsifier: Falsifier) -> None:
    """(b) Every counterexample passes through the claim's conclusion predicate, which is false there."""
    assert counterexample_problems(claim, falsifier) == []


def test_a_counterexample_that_satisfies_the_conclusion_is_rejected() -> None:
    """(c) Meta-test: D3 at the boundary η = 1 drops "0 < η < 1", but with one prototype F is exactly quadratic
    and ``p⁺ − ȳ = −(p − ȳ)``: F does not increase, the conclusion holds. A falsifier that claims it fails
    anyway must be reported, by the conclusion predicate, not by its own word."""
    from reference.falsify import ddcl as fz

    claim = REGISTRY["D3"]
    Y, P = np.array([[-1.0, 0.0], [2.0, 0.0]]), np.array([[3.0], [1.0]])
    inputs = {"Y": Y, "P": P, "T_P": 1.0, "eta": 1.0}
    fake = Falsifier(
        "step_size_in_unit_interval",
        "η = 1 (claims F increases)",
        lambda: Counterexample("D3", "step_size_in_unit_interval", inputs, "F is unchanged", conclusion_fails=True),
    )
    assert fz.d3_conclusion(**inputs)
    problems = counterexample_problems(claim, fake)
    assert any("the conclusion holds without step_size_in_unit_interval" in p for p in problems), problems
    assert any("conclusion_fails=True" in p for p in problems), problems
    # and one that violates a second hypothesis too is reported
    wrong = Falsifier(
        "step_size_in_unit_interval",
        "also T_P < 0",
        lambda: Counterexample("D3", "step_size_in_unit_interval", {**inputs, "T_P": -1.0}, "", conclusion_fails=True),
    )
    assert any("also violates ['temperature_positive']" in p for p in counterexample_problems(claim, wrong))


def test_a_claim_with_an_uncovered_hypothesis_or_a_double_cover_is_refused() -> None:
    """Meta-test of ``Claim.__post_init__``: a proved claim whose hypothesis has neither a falsifier nor a
    reason, or both, or a reason for an unknown hypothesis, cannot be built."""
    base = REGISTRY["D3"]
    with pytest.raises(ValueError, match="neither a falsifier nor a stated reason"):
        dataclasses.replace(base, falsifiers=base.falsifiers[:1])
    with pytest.raises(ValueError, match="have a falsifier, so no reason"):
        dataclasses.replace(base, no_falsifier={"temperature_positive": "because"})
    with pytest.raises(ValueError, match="unknown hypothesis"):
        dataclasses.replace(base, no_falsifier={"no_such": "because"})
    with pytest.raises(ValueError, match="more than one falsifier"):
        dataclasses.replace(base, falsifiers=(*base.falsifiers, base.falsifiers[0]))
    with pytest.raises(ValueError, match="conclusion predicate"):
        dataclasses.replace(base, conclusion=None)
    # a claim that is not proved (or not implemented) is not held to it
    dataclasses.replace(base, label=Label.MEASURED, falsifiers=(), conclusion=None)


def test_a_proved_claim_is_checked_live_or_says_why_not() -> None:
    """Meta-test of ``Claim.live`` / ``Claim.not_live``: which claims the audit sees checked in training is
    read from the registry, so an implemented proved claim with neither cannot be built, nor one with both;
    and every hypothesis a claim restricts (``only_for``) names checks of that claim's invariant."""
    live, quiet = REGISTRY["D3"], REGISTRY["D6"]
    with pytest.raises(ValueError, match="must say why"):
        dataclasses.replace(live, live=())
    with pytest.raises(ValueError, match="not_live must be empty"):
        dataclasses.replace(live, not_live="because")
    assert quiet.not_live
    assert not quiet.live
    dataclasses.replace(quiet, not_live="", label=Label.MEASURED, falsifiers=(), conclusion=None)
    assert [c.id for c in REGISTRY.values() if c.label is Label.PROVED and not c.live] == ["D6"]
    g5 = REGISTRY["G5"]
    (hysteresis,) = [h for h in g5.hypotheses if h.only_for]
    assert hysteresis.name == "hysteresis"
    assert not hysteresis.needed_by("removal: A_res(after) − A_res(before) = −Π⊥½[C, M_a^h]Π⊥")
    assert hysteresis.needed_by("no re-trigger: births at the next check on the same probe (T_d = 0)")


def test_proved_ddcl_claims_with_falsifiers_asked_for() -> None:
    """The foundation issue asks for falsifiers of D3 (step size) and D4 (temperature)."""
    assert "step_size_in_unit_interval" in {f.hypothesis for f in REGISTRY["D3"].falsifiers}
    assert "temperature_below_critical" in {f.hypothesis for f in REGISTRY["D4"].falsifiers}


def test_falsify_command_shows_every_hypothesis_and_exits_zero() -> None:
    """``ddcl-incrt falsify``: one row per hypothesis of every proved claim (a counterexample with the
    conclusion predicate's verdict, or the stated reason), exit 0 when every counterexample is one."""
    from rich.console import Console

    from ddcl_incrt.cli import build_parser

    console = Console(record=True, width=400)
    args = build_parser().parse_args(["falsify"])
    assert args.func(args, console) == 0
    text = console.export_text()
    n_ce = sum(len(c.falsifiers) for c in PROVED)
    n_reasons = sum(len(c.no_falsifier) for c in PROVED)
    assert n_ce + n_reasons == sum(len(c.hypotheses) for c in PROVED)
    assert text.count("only this one false") == n_ce
    assert text.count("no falsifier:") == n_reasons
    assert f"{n_ce} counterexamples, {n_reasons} hypotheses with a stated reason" in text
    assert "NO" not in text


# --------------------------------------------------------------------------------------------------
# The registry reaches the tests: every implemented claim has marked property and planted tests
# --------------------------------------------------------------------------------------------------

TESTS_DIR = Path(__file__).resolve().parent


def claim_tests_of_the_suite(config: pytest.Config) -> ClaimTests:
    """The ``claim`` markers of the whole suite: this session's, if it collected every test module;
    otherwise from a ``--collect-only`` run of ``tests/`` in a subprocess (so a partial run checks too)."""
    every = {p.name for p in TESTS_DIR.glob("test_*.py")}
    if every <= config.stash.get(COLLECTED_FILES, frozenset()):
        return config.stash[CLAIM_TESTS]
    return collect_claim_tests(TESTS_DIR)


@pytest.fixture(scope="module")
def suite_claim_tests(request: pytest.FixtureRequest) -> ClaimTests:
    return claim_tests_of_the_suite(request.config)


def test_every_implemented_claim_has_a_marked_property_and_planted_test(suite_claim_tests: ClaimTests) -> None:
    assert missing_claim_tests(REGISTRY.values(), suite_claim_tests) == []


def test_a_claim_without_a_marked_planted_test_is_reported(suite_claim_tests: ClaimTests) -> None:
    """Meta-test: remove G5's planted tests from the map and the check names exactly that gap."""
    gap = {cid: dict(kinds) for cid, kinds in suite_claim_tests.items()}
    gap["G5"] = {k: v for k, v in gap["G5"].items() if k != "planted"}
    assert [line.split(":")[0] for line in missing_claim_tests(REGISTRY.values(), gap)] == ["G5"]
    assert "planted" in missing_claim_tests(REGISTRY.values(), gap)[0]


def test_an_unknown_claim_marker_is_a_collection_error(tmp_path: Path) -> None:
    """A typo in a marker (claim "G7") must stop the run, not silently count for nothing."""
    (tmp_path / "conftest.py").write_text((TESTS_DIR / "conftest.py").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "test_typo.py").write_text(
        'import pytest\n\n\n@pytest.mark.claim("G7", "property")\ndef test_x() -> None:\n    pass\n',
        encoding="utf-8",
    )
    cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=TESTS_DIR.parent)
    assert run.returncode != 0
    assert "G7" in run.stdout + run.stderr


def _test_names(found: ClaimTests, claim_id: str) -> set[str]:
    nodeids = [n for ids in found.get(claim_id, {}).values() for n in ids]
    return {n.split("::")[-1].split("[")[0] for n in nodeids}


# --------------------------------------------------------------------------------------------------
# docs/theory.md agrees with the registry
# --------------------------------------------------------------------------------------------------


def _theory_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in THEORY.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if cells and re.fullmatch(r"[DGR]\d", cells[0]):
            assert cells[0] not in rows, f"duplicate row {cells[0]} in docs/theory.md"
            rows[cells[0]] = cells
    return rows


def _names(cell: str) -> set[str]:
    return {x.strip().strip("`") for x in cell.split(",") if x.strip()}


def test_theory_doc_has_one_row_per_claim_in_registry_order() -> None:
    rows = _theory_rows()
    assert list(rows) == list(REGISTRY)


@pytest.mark.parametrize("claim", list(REGISTRY.values()), ids=lambda c: c.id)
def test_theory_row_agrees_with_registry(claim: Claim) -> None:
    cells = _theory_rows()[claim.id]
    assert len(cells) == 9, f"{claim.id}: expected 9 columns, got {len(cells)}"
    _, title, label, _statement, hypotheses, sketch, code, steps, _tests = cells
    assert title == claim.title
    assert label == claim.label.value
    assert _names(hypotheses) == {h.name for h in claim.hypotheses}
    assert _names(steps) == set(claim.sympy_steps)
    assert (sketch == "not yet implemented") == (not claim.implemented)
    assert _names(code) == set(claim.implementation), f"{claim.id}: code column vs Claim.implementation"


@pytest.mark.parametrize("claim", list(REGISTRY.values()), ids=lambda c: c.id)
def test_theory_tests_column_lists_the_marked_tests(claim: Claim, suite_claim_tests: ClaimTests) -> None:
    assert _names(_theory_rows()[claim.id][8]) == _test_names(suite_claim_tests, claim.id)


def test_theory_row_parser_detects_a_disagreement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Meta-test: a doc whose D1 label is wrong must fail the agreement check."""
    broken = tmp_path / "theory.md"
    broken.write_text(
        THEORY.read_text().replace("| D1 | Decomposition | proved |", "| D1 | Decomposition | measured |")
    )
    monkeypatch.setattr(sys.modules[__name__], "THEORY", broken)
    with pytest.raises(AssertionError):
        test_theory_row_agrees_with_registry(REGISTRY["D1"])
