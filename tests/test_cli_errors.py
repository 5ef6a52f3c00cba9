"""CLI errors: unknown claim ids are refused (exit code 2) and every error goes to stderr (issue 10, finding 16)."""

from __future__ import annotations

import pytest

from ddcl_incrt.cli import main
from proofs_check import ALL_STEPS


def test_prove_refuses_an_unknown_claim_id(capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 16: ``prove --claim D1 --claim ZZ`` used to exit 0 and ignore ZZ (and errors went to stdout)."""
    assert main(["prove", "--claim", "D1", "--claim", "ZZ"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing was run, nothing printed as a result
    err = " ".join(captured.err.split())  # rich may wrap the line
    assert "unknown claim id(s) ZZ" in err
    for claim in sorted({s.claim for s in ALL_STEPS}):
        assert claim in err  # the valid ids are listed


def test_prove_with_only_unknown_ids_is_an_error_too(capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 16: an id that names no claim with proof steps is an error, whatever else is asked."""
    assert main(["prove", "--claim", "d1"]) == 2  # ids are case-sensitive: D1 exists, d1 does not
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "d1" in captured.err


def test_argument_errors_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 16: argparse's own errors (unknown subcommand) exit 2 on stderr."""
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no-such-command" in captured.err
