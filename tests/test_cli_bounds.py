"""Counts a command cannot mean are refused by the option that took them (an outside tester's findings:
a 20-digit --steps was refused by TrainConfig naming TrainConfig.steps, bench --repeats of 20 digits
ran "forever", a repeated --growth-variant was refused naming TrainConfig.growth_variants)."""

from __future__ import annotations

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
