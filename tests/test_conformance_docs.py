"""docs/porting.md says what a port must know, and it stays true: every field of every dataclass a port
fills is documented, every option of ``ddcl-incrt conformance`` and every exit code is, and the decision
details it states hold on the reference (each shown against the variant a port could get wrong)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from pathlib import Path

import numpy as np
import pytest

import reference.growth_phases as growth_phases
from ddcl_incrt import exit_codes
from ddcl_incrt.conformance.adapter import CheckStatistics
from ddcl_incrt.conformance.cases import trajectory_inputs
from ddcl_incrt.conformance.command import add_subcommand
from ddcl_incrt.conformance.runner import golden
from ddcl_incrt.conformance.trajectory import run_trajectory
from reference.growth_statistics import prototype_masses
from reference.incrt.controller import (
    GrowthConfig,
    GrowthState,
    HeadRecord,
    PrototypeRecord,
    prototype_prune_check,
    prune_decision,
)
from reference.model import HeadParams, LayerConfig, ModelParams
from reference.optim import AdamMoments, AdamState, LearningRates
from training.trainer import ReferenceEngine

DOCS = Path(__file__).resolve().parent.parent / "docs" / "porting.md"
PORT_DATACLASSES = (
    CheckStatistics,
    LayerConfig,
    ModelParams,
    HeadParams,
    GrowthConfig,
    GrowthState,
    HeadRecord,
    PrototypeRecord,
    AdamState,
    AdamMoments,
    LearningRates,
)


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n#", start + len(title))
    return text[start : end if end >= 0 else len(text)]


def undocumented_fields(text: str, classes: tuple[type, ...]) -> list[str]:
    """``Class.field`` for every field of ``classes`` that ``text`` does not name in backticks in the
    bullet naming the class."""
    missing: list[str] = []
    bullets = re.split(r"(?:^|\n)- ", text)
    for cls in classes:
        own = [b for b in bullets if b.startswith(f"`{cls.__module__}.{cls.__name__}`")]
        if not own:
            missing.append(f"{cls.__name__} (no bullet)")
            continue
        missing += [f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls) if f"`{f.name}`" not in own[0]]
    return missing


def test_every_field_of_the_dataclasses_a_port_fills_is_documented() -> None:
    section = _section(DOCS.read_text(encoding="utf-8"), "### The dataclasses a port fills")
    assert undocumented_fields(section, PORT_DATACLASSES) == []


def test_the_field_check_finds_a_missing_field() -> None:
    """Meta-test: a bullet without one of the fields is found."""
    text = "- `reference.optim.AdamMoments`: `m`, `v` (the parameter's shape)\n"
    assert undocumented_fields(text, (AdamMoments,)) == ["AdamMoments.t"]
    assert undocumented_fields("", (AdamMoments,)) == ["AdamMoments (no bullet)"]


def _options() -> list[str]:
    parser = argparse.ArgumentParser()
    add_subcommand(parser.add_subparsers(dest="command"))
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["conformance"]
    return sorted(o for a in sub._actions for o in a.option_strings if o.startswith("--") and o != "--help")


def test_every_option_and_exit_code_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    options = _options()
    assert {"--template", "--min-coverage", "--properties", "--adapter", "--outputs"} <= set(options)
    assert [o for o in options if f"`{o}" not in text and f"{o} " not in text] == []
    table = _section(text, "### Minimum coverage, exit codes, errors")
    for name in (n for n in exit_codes.__all__ if isinstance(getattr(exit_codes, n), int)):  # the codes, not helpers
        assert f"| {getattr(exit_codes, name)} (`{name}`) |" in table, name
    assert "stderr" in table
    assert "`ddcl_incrt/conformance/adapters/reference.py`" in text  # the bundled template
    for field in ("`ref.decision_pairs`", "`directions_defined`"):
        assert field in text


# --------------------------------------------------------------------------------------------------
# The decision details docs/porting.md states, on the reference
# --------------------------------------------------------------------------------------------------

CONFIG = GrowthConfig(theta=50.0, phi_g=0.1, T_d=10, T_prune=2, eps_K=0.05)


def _state(heads: tuple[HeadRecord, ...], prototypes: int = 2) -> GrowthState:
    return GrowthState(
        Q_cap=np.zeros((4, 0)),
        last_growth_step=heads[-1].birth_step,
        heads=heads,
        prototypes=tuple(PrototypeRecord(j) for j in range(prototypes)),
    )


def test_a_young_heads_below_count_advances_and_it_is_pruned_once_old_enough() -> None:
    state = _state((HeadRecord(0, 0), HeadRecord(1, 35, below_count=1)))
    weak = {0: 1.0, 1: 0.01}  # head 1 below φ_g

    def lam(heads: tuple[int, ...]) -> float:
        return 0.0

    young, events = prune_decision(state, CONFIG, weak, lam, 40)  # age 5 < T_d
    assert events == ()
    assert young.heads[1].below_count == 2  # advanced while young (a port that freezes it has 1)
    old, events = prune_decision(young, CONFIG, weak, lam, 45)  # age 10 = T_d: eligible at once
    assert [e.head_id for e in events] == [1]
    assert old.head_ids == (0,)
    # the committed vector says the same: prune_decision/too_young ends with head 1's count at 2
    entry = next(e for e in golden() if e.case.check == "prune_decision/too_young")
    assert entry.outputs is not None
    heads = entry.outputs["state.heads"]
    assert heads[heads[:, 0] == 1, 2].tolist() == [2]


def test_idle_prototypes_go_smallest_mass_first_when_min_prototypes_binds() -> None:
    cfg = dataclasses.replace(CONFIG, T_prune=1, min_prototypes=2)
    state = _state((HeadRecord(0, 0),), prototypes=4)
    mass = np.array([0.01, 0.04, 0.02, 0.93])  # ids 0, 1, 2 idle; by id the first two would be 0 and 1
    after, events = prototype_prune_check(state, cfg, mass, 40)
    assert [e.prototype_id for e in events] == [0, 2]
    assert after.prototypes == (PrototypeRecord(1, 1), PrototypeRecord(3, 0))  # the one left keeps its count


def test_masses_follow_the_same_checks_birth_and_prunes_and_a_newborn_joins_that_prune_phase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``trajectory/short_run``: a birth at step 10 and that head's prune at step 40. The masses of
    each check are read from the parameters after its birth and its head prunes."""
    heads_seen: list[list[int]] = []

    def spy(params: ModelParams, cfg: LayerConfig, probe: object, growth: GrowthState) -> np.ndarray:
        heads_seen.append(sorted(params.heads))
        return prototype_masses(params, cfg, probe, growth)  # type: ignore[arg-type]

    monkeypatch.setattr(growth_phases, "prototype_masses", spy)
    newborn_counts: list[int] = []

    def prune_spy(state: GrowthState, *args: object) -> tuple[GrowthState, tuple[object, ...]]:
        out, events = prune_decision(state, *args)  # type: ignore[arg-type]
        newborn_counts.extend(h.below_count for h in out.heads if h.head_id == 1 and h.birth_step == args[-1])
        return out, events

    monkeypatch.setattr(growth_phases, "prune_decision", prune_spy)
    out, pairs = run_trajectory(ReferenceEngine(), trajectory_inputs())
    events = out.events.tolist()
    assert [e[:3] for e in events if e[1] in (1, 2)] == [[10, 1, 1], [40, 2, 1]]  # birth, head prune
    assert heads_seen == [[0, 1], [0, 1], [0, 1], [0]]  # step 10 with the newborn, step 40 without it
    assert newborn_counts == [1]  # at its birth check, the newborn's count already advanced
    assert all(math.isfinite(v) for v in pairs[:, 1])


def test_the_outputs_manifest_s_case_keys_are_documented_as_read() -> None:
    """The paragraph on what a port writes back named its "same layout" as the inputs manifest's, which
    reads as "the same keys": it says which keys an outputs case has, and that the others are refused."""
    from ddcl_incrt.conformance import vectors

    text = DOCS.read_text(encoding="utf-8")
    start = text.index("The port writes an `outputs` directory")
    paragraph = " ".join(text[start : text.index("```", start)].split())
    allowed = vectors._CASE_KEYS["outputs"]
    assert f"with only {', '.join(f'`{k}`' for k in allowed[:-1])} and `{allowed[-1]}`" in paragraph
    refused = [k for k in vectors._CASE_KEYS["inputs"] if k not in allowed]
    assert f"{', '.join(f'`{k}`' for k in refused[:-1])} and `{refused[-1]}` are not repeated there" in paragraph
    assert "refuses them in an outputs case as unknown keys" in paragraph
