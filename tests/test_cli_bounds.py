"""Counts a command cannot mean are refused by the option that took them (an outside tester's findings:
a 20-digit --steps was refused by TrainConfig naming TrainConfig.steps, bench --repeats of 20 digits
ran "forever", a repeated --growth-variant was refused naming TrainConfig.growth_variants)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ddcl_incrt.arguments import MAX_REPEATS, MAX_STEPS
from ddcl_incrt.cli import build_parser, main
from ddcl_incrt.exit_codes import USAGE


@pytest.mark.parametrize(
    ("argv", "option", "limit"),
    [
        (["audit", "--steps"], "--steps", MAX_STEPS),
        (["audit", "--checkpoint-every"], "--checkpoint-every", MAX_STEPS),
        (["bench", "--repeats"], "--repeats", MAX_REPEATS),
    ],
)
def test_a_count_past_its_cap_is_refused_by_its_option_and_the_cap_is_accepted(
    argv: list[str], option: str, limit: int, capsys: pytest.CaptureFixture[str]
) -> None:
    for too_many in (str(limit + 1), "9" * 20):
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args([*argv, too_many])
        assert exit_.value.code == USAGE
        assert f"argument {option}: expected at most {limit} " in capsys.readouterr().err
    args = build_parser().parse_args([*argv, str(limit)])
    assert limit in vars(args).values()


def test_a_growth_variant_given_twice_is_refused_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "20", "--engine", "reference"]
    assert main([*argv, "--growth-variant", "author_code", "--growth-variant", "author_code"]) == USAGE
    err = capsys.readouterr().err
    assert "--growth-variant: 'author_code' is given more than once" in err
    assert "TrainConfig" not in err


@pytest.mark.parametrize(
    ("study", "argv", "needle"),
    [
        ("planted_heads", ["--seeds", "0"], "argument --seeds: expected a positive integer, got 0"),
        ("planted_heads", ["--seeds", "9" * 20], "argument --seeds: expected at most 1000 seeds"),
        ("planted_heads", ["--workers", "-2"], "argument --workers: expected a positive integer, got -2"),
        ("planted_heads", ["--steps", str(10**8)], "argument --steps: expected at most 10000000 steps"),
        ("planted_heads", ["--first-seed", str(2**32 - 1), "--seeds", "2"], "the last seed passes 2**32 - 1"),
        ("time_scales", ["--workers", "9" * 20], "argument --workers: expected at most 1024 worker processes"),
    ],
)
def test_the_studies_refuse_counts_they_cannot_mean_naming_the_option(
    study: str, argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They took plain ints: a negative --workers or a 20-digit --seeds reached the study's own code."""
    import importlib

    module = importlib.import_module(f"ddcl_incrt.studies.{study}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--out", str(tmp_path), *argv])
    assert exit_.value.code == USAGE
    assert needle in capsys.readouterr().err
