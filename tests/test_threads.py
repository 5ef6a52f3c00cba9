"""The thread policy of every command (ddcl_incrt.threads): one count for torch's intra-op pool, the
BLAS pools NumPy loaded and OMP_NUM_THREADS (what starts later reads it)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from ddcl_incrt.cli import build_parser, main
from ddcl_incrt.threads import DEFAULT_THREADS, MAX_THREADS, use_threads


@pytest.fixture(autouse=True)
def _restore(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test changes the process's pools: put back the worker's counts afterwards."""
    with threadpool_limits(limits=None):
        t = sys.modules.get("torch")
        before = t.get_num_threads() if t is not None else None
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        yield
        if t is not None and before is not None:
            t.set_num_threads(before)


def _blas_threads() -> set[int]:
    return {int(p["num_threads"]) for p in threadpool_info()}


def test_the_default_is_one_thread_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    assert use_threads(None) == DEFAULT_THREADS == 1
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert _blas_threads() <= {1}


def test_an_explicit_count_and_the_environment_are_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    assert use_threads(2) == 2
    assert torch.get_num_threads() == 2
    assert _blas_threads() <= {2}
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert use_threads(None) == 2  # the user's OMP_NUM_THREADS is kept when --threads is not given
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    assert use_threads(None) == DEFAULT_THREADS  # set but empty: as if unset
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert use_threads(1) == 1  # --threads takes precedence over the environment
    assert torch.get_num_threads() == 1


@pytest.mark.parametrize("bad", ["not a number", "0", "-3", "4,2", "1.5", "\u00b2", "\u0663"])
def test_an_omp_num_threads_that_is_not_a_positive_count_is_refused_naming_it(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", bad)
    with pytest.raises(ValueError, match="OMP_NUM_THREADS: .*" + re.escape(repr(bad))):
        use_threads(None)


def test_a_bad_omp_num_threads_is_a_one_line_error_of_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "abc")
    assert main(["claims"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "OMP_NUM_THREADS" in err[0], err


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_a_count_below_one_or_not_an_int_is_refused_naming_threads(bad: object) -> None:
    with pytest.raises(ValueError, match="--threads"):
        use_threads(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "big",
    [str(MAX_THREADS + 1), "4294967296", "99999999999999999999", "9" * 5000],
    ids=["cap+1", "2**32", "20", "5000"],
)
def test_an_omp_num_threads_above_the_cap_is_refused_naming_it(big: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """It was an OverflowError traceback from threadpoolctl (a C int), or 100000 threads asked for."""
    monkeypatch.setenv("OMP_NUM_THREADS", big)
    with pytest.raises(ValueError, match=f"OMP_NUM_THREADS: expected at most {MAX_THREADS} threads") as exc:
        use_threads(None)
    assert len(str(exc.value)) < 300  # one readable line, even for 5000 digits


@pytest.mark.parametrize(
    "big", [MAX_THREADS + 1, 2**32, 10**20, 10**5000], ids=["cap+1", "2**32", "10**20", "10**5000"]
)
def test_a_count_above_the_cap_is_refused_naming_threads(big: int) -> None:
    with pytest.raises(ValueError, match=f"--threads: expected at most {MAX_THREADS} threads"):
        use_threads(big)


def test_the_cap_itself_is_a_count_like_any_other(monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_THREADS == 1024
    assert use_threads(MAX_THREADS) == MAX_THREADS
    assert os.environ["OMP_NUM_THREADS"] == str(MAX_THREADS)
    monkeypatch.setenv("OMP_NUM_THREADS", f"00{MAX_THREADS}")  # leading zeros: still the count
    assert use_threads(None) == MAX_THREADS
    monkeypatch.setenv("OMP_NUM_THREADS", "000")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS: expected a positive integer"):
        use_threads(None)


def test_every_command_takes_threads(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert "--threads" in sub.choices[name].format_help(), name  # type: ignore[index]
    with pytest.raises(SystemExit) as exc:
        main(["claims", "--threads", "0"])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err
