"""Property mode's reports: every distinct failure of a property with its own falsifying example, and a
repro (the property alone, its seed) that reproduces the failure in a fresh interpreter."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _snippets import run_snippet

from ddcl_incrt.cli import main
from ddcl_incrt.conformance import broken
from ddcl_incrt.conformance.operations import load_adapter
from ddcl_incrt.conformance.properties import (
    reproduce_property,
    run_properties,
    select_properties,
)
from ddcl_incrt.conformance.runner import run_adapter
from ddcl_incrt.exit_codes import FAILED_CHECK, OK, USAGE
from reference import ddcl

BROKEN_V = "ddcl_incrt.conformance.broken:normalisation_variance"  # D1 fails (V over n·K)
PRIMITIVES_ONLY = "ddcl_incrt.conformance.broken:primitives_only"


class _TwoBugs(broken.PrimitivesOnly):
    """Two distinct failures of D1: an exception at K = 1, a wrong L_q elsewhere."""

    name = "two bugs"

    def quantisation_loss(self, Y: np.ndarray, P: np.ndarray, Q: np.ndarray) -> float:
        if P.shape[1] == 1:
            raise ZeroDivisionError("K = 1 not handled")
        return 2.0 * ddcl.quantisation_loss(Y, P, Q)


def test_each_distinct_failure_has_its_own_example_and_the_property_a_repro() -> None:
    (d1,) = run_properties(_TwoBugs(), max_examples=10, only=select_properties(["D1"]), seed=0)
    assert d1.status == "fail"
    assert len(d1.failures) == 2
    kinds = sorted(f.message.split(":")[0] for f in d1.failures)
    assert kinds == ["AssertionError", "ZeroDivisionError"]
    assert all("example=" in f.falsifying_example for f in d1.failures)
    # each example is its own: the K = 1 failure's example has a one-column P, the other's does not
    (zero,) = [f for f in d1.failures if f.message.startswith("ZeroDivisionError")]
    (wrong,) = [f for f in d1.failures if f.message.startswith("AssertionError")]
    assert zero.falsifying_example != wrong.falsifying_example
    assert (d1.seed, d1.examples) == (0, 10)
    assert "reproduce_property(claim='D1'" in d1.repro
    assert "--only-property D1 --property-examples 10 --property-seed 0" in d1.repro
    report = run_adapter(PRIMITIVES_ONLY, only=["mean_entropy/*"])
    report.properties = [d1]
    md = report.to_markdown()
    assert "Failure 1 of 2: " in md
    assert "Failure 2 of 2: " in md
    assert "Reproduce (seed 0, 10 examples):" in md
    assert zero.falsifying_example.splitlines()[0] in md
    data = report.to_dict()
    (p,) = data["properties"]
    assert [f["message"] for f in p["failures"]] == [f.message for f in d1.failures]
    assert p["seed"] == 0
    assert p["repro"] == d1.repro


def test_the_repro_reproduces_the_failure_in_a_fresh_interpreter_and_passes_on_a_correct_port() -> None:
    (d1,) = run_properties(
        broken.normalisation_variance(), max_examples=5, only=select_properties(["D1"]), spec=BROKEN_V, seed=4
    )
    assert d1.status == "fail"
    snippet = d1.repro.split("\n# or:")[0]
    assert f"adapter={BROKEN_V!r}" in snippet
    assert "seed=4" in snippet
    run = run_snippet(snippet, timeout=300)
    assert run.returncode != 0, run.stdout + run.stderr
    assert "property D1: fail" in run.stderr
    assert "example=" in run.stderr  # the falsifying example is in the raised error
    ok = run_snippet(snippet.replace(BROKEN_V, PRIMITIVES_ONLY), timeout=300)
    assert ok.returncode == 0, ok.stderr
    with pytest.raises(AssertionError, match="property D1: fail"):
        reproduce_property(claim="D1", adapter=BROKEN_V, examples=5, seed=4)
    assert reproduce_property(claim="D1", adapter=PRIMITIVES_ONLY, examples=5, seed=4).status == "pass"


_BAD_COUNTS = [
    ({"examples": 0}, ValueError, r"^{examples}: must be >= 1, got 0$"),
    ({"examples": 2.5}, TypeError, r"^{examples}: expected an int"),
    ({"seed": -1}, ValueError, r"^seed: must be >= 0, got -1$"),
    ({"seed": "7"}, TypeError, r"^seed: expected an int"),
]


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        *_BAD_COUNTS,
        ({"claim": "Z9"}, ValueError, r"^claim: no property \['Z9'\]; known: \['D1'"),
        ({"claim": None}, TypeError, r"^claim: expected a claim id"),
    ],
)
def test_reproduce_property_refuses_bad_arguments_naming_them(
    changes: dict[str, object], error: type[Exception], message: str
) -> None:
    """Zero examples (hypothesis's own InvalidArgument used to escape as a fault of the kit), a negative or
    non-integer seed (accepted before), an unknown claim (named --only-property, the command's option)."""
    args: dict[str, object] = {"claim": "D1", "adapter": PRIMITIVES_ONLY, "examples": 1, "seed": 0, **changes}
    with pytest.raises(error, match=message.replace("{examples}", "examples")):
        reproduce_property(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("changes", "error", "message"), _BAD_COUNTS)
def test_run_properties_refuses_bad_counts_naming_them(
    changes: dict[str, object], error: type[Exception], message: str
) -> None:
    args: dict[str, object] = {"max_examples": 1, "seed": 0}
    args.update({"max_examples" if k == "examples" else k: v for k, v in changes.items()})
    with pytest.raises(error, match=message.replace("{examples}", "max_examples")):
        run_properties(load_adapter(PRIMITIVES_ONLY), only=select_properties(["D1"]), **args)  # type: ignore[arg-type]


def test_the_seed_decides_the_examples() -> None:
    """Same seed, same falsifying examples (a repro meets the failure it reproduces)."""
    runs = [
        run_properties(_TwoBugs(), max_examples=10, only=select_properties(["D1"]), seed=7, shrink=False)[0]
        for _ in range(2)
    ]
    assert runs[0].falsifying_example == runs[1].falsifying_example != ""


def test_only_property_and_property_seed_on_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    args = ["conformance", "--adapter", BROKEN_V, "--only", "mean_entropy/*", "--properties"]
    code = main(
        [*args, "--only-property", "D1", "--property-seed", "3", "--property-examples", "4", "--json", str(out)]
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    assert code == data["exit_code"] == FAILED_CHECK
    (p,) = data["properties"]
    assert (p["claim"], p["status"], p["seed"], p["examples"]) == ("D1", "fail", 3, 4)
    assert "--only-property D1 --property-examples 4 --property-seed 3" in p["repro"]
    code = main([*args, "--only-property", "D5", "--json", str(out)])
    assert code == OK
    assert [q["claim"] for q in json.loads(out.read_text(encoding="utf-8"))["properties"]] == ["D5"]


@pytest.mark.parametrize(
    ("extra", "needs"),
    [
        (["--only-property", "D1"], "only with --properties"),
        (["--property-seed", "2"], "only with --properties"),
        (["--properties", "--only-property", "D9"], "no property ['D9']"),
    ],
)
def test_property_options_misused_are_usage_errors(
    extra: list[str], needs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["conformance", "--adapter", PRIMITIVES_ONLY, "--only", "mean_entropy/basic", *extra])
    assert code == USAGE
    assert needs in capsys.readouterr().err


@pytest.mark.parametrize("seed", [str(2**32), "-1", "1e3"])
def test_a_property_seed_out_of_range_is_an_argument_error(seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The seed range of every --seed option (it used to take any non-negative integer, then refuse one
    beyond int64 in the library, naming its parameter instead of the option)."""
    with pytest.raises(SystemExit) as exit_:
        main(["conformance", "--adapter", PRIMITIVES_ONLY, "--properties", "--property-seed", seed])
    assert exit_.value.code == USAGE
    assert "argument --property-seed: expected an integer in [0, 2**32 - 1]" in capsys.readouterr().err
