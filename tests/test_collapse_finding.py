"""The audit's finding on a shrunken prototype dictionary (``ddcl_incrt.audit.summary.collapse_finding``):
read from the record's checks (``collapse_margin = T_c − T_P``, ``n_prototypes``, ``mass``) and its
prototype-prune events, on records whose checks are set by hand, so every branch's sentence is pinned
to numbers chosen here, not to what a run happens to do."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pytest
from _small_run import small_run

from ddcl_incrt.audit.summary import collapse_finding
from reference.incrt.controller import EventKind, GrowthEvent
from training.record import RunRecord


@cache
def _base() -> RunRecord:
    record = small_run()
    assert record.checks, "the small run has growth checks"
    return record


def _eps() -> float:
    return _base().growth_config.eps_K


def _record(margins: list[float], prototypes: list[int], final: int, prunes: list[int]) -> RunRecord:
    """The small run (K_max = 4, ε_K its own) with checks at steps 10, 20, … carrying these margins and
    prototype counts (masses: the first prototype 0.9, the rest 0.1/(K−1)), ending with ``final``
    prototypes, and a prototype prune at each step of ``prunes``."""
    base = _base()
    template = base.checks[0]
    checks = []
    for i, (margin, k) in enumerate(zip(margins, prototypes, strict=True)):
        mass = {0: 0.9, **{j: 0.1 / (k - 1) for j in range(1, k)}} if k > 1 else {0: 1.0}
        checks.append(
            replace(
                template,
                step=10 * (i + 1),
                collapse_margin=margin,
                collapse_T_c=base.layer_config.T_P + margin,
                n_prototypes=k,
                mass=mass,
            )
        )
    events = tuple(
        GrowthEvent(
            step=s,
            kind=EventKind.PROTOTYPE_PRUNE,
            statistic=0.0,
            threshold=0.01,
            margin=0.01,
            decision="prototype_prune",
        )
        for s in prunes
    )
    architecture = replace(base.architecture, n_prototypes=final, prototype_ids=tuple(range(final)))
    return replace(base, checks=tuple(checks), events=events, architecture=architecture)


def test_no_finding_while_the_dictionary_kept_more_than_max_2_or_an_eighth_of_k_max() -> None:
    assert _base().layer_config.K_max == 4
    assert collapse_finding(_record([0.5, 0.5], [4, 3], final=3, prunes=[20])) == ""
    assert collapse_finding(_record([0.5, 0.5], [4, 3], final=2, prunes=[10, 20])) != ""


def test_every_check_below_t_c_blames_the_mass_floor_and_quotes_the_smallest_margin() -> None:
    text = collapse_finding(_record([0.75, 0.25, 0.5], [4, 3, 2], final=2, prunes=[10, 20]))
    assert "stayed below the collapse temperature T_c at every check (smallest T_c − T_P = 0.25)" in text
    assert f"the mass floor ε_K = {_eps():.3g} removed 2 prototypes (steps 10–20)" in text
    assert "by the pruning rule, not by collapse" in text


def test_a_check_at_or_above_t_c_is_where_collapse_is_predicted_and_later_checks_with_two_prototypes() -> None:
    """Margins +, 0, −, + (0 counts as failed: ``T_P < T_c`` is strict); the check after the last failure
    has two prototypes, so D4 applies there again."""
    text = collapse_finding(_record([0.5, 0.0, -0.25, 0.5], [4, 3, 2, 2], final=2, prunes=[10, 20]))
    assert "At the check of step 20, T_P = 1 was not below the collapse temperature" in text
    assert "it failed at 2 of the 4 checks: steps 20, 30" in text
    assert "From step 40 on T_c was above T_P again (collapse unstable by D4), but only 1 prototype held" in text


def test_one_prototype_left_after_the_failures_is_not_called_unstable_by_d4() -> None:
    """D4 needs K ≥ 2: at a later check with one prototype the finding says D4 is silent there, where it
    used to say "collapse unstable by D4" (a conclusion whose hypothesis failed)."""
    text = collapse_finding(_record([0.5, -0.25, 0.5], [4, 2, 1], final=1, prunes=[10, 20, 20, 30]))
    assert "From step 30 on T_c was above T_P again, with one prototype left, where D4 says nothing" in text
    assert "collapse unstable by D4), but only" not in text


@pytest.mark.parametrize("k", [1, 2])
def test_the_later_sentence_turns_on_exactly_two_prototypes(k: int) -> None:
    text = collapse_finding(_record([-0.25, 0.5], [3, k], final=1, prunes=[10, 20]))
    assert ("collapse unstable by D4" in text.split("From step 20")[1]) is (k == 2)
