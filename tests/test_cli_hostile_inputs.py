"""Hostile input to the command line, found by an outside tester: a thread count or a number of seeds too
large for the machine (an OverflowError or MemoryError traceback, exit 3, or silently accepted), a
standard output whose reader went away or that is closed (exit 1, which means "a check failed", or an
AttributeError traceback), and ``python -m ddcl_incrt.bench``, which ran the bench outside the
command's error handling (a KeyboardInterrupt traceback, a silent death on SIGTERM). Each check here
fires on the planted violation and passes the valid case next to it."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest
from _snippets import child_env
from threadpoolctl import threadpool_limits

from ddcl_incrt import exit_codes
from ddcl_incrt.arguments import CLUSTER_MAX_SEEDS, cluster_seed_count, thread_count
from ddcl_incrt.cli import build_parser, main
from ddcl_incrt.threads import MAX_THREADS

ROOT = Path(__file__).resolve().parents[1]
TOO_MANY = [
    pytest.param(text, id=f"{len(text)}-digits") for text in ("1025", "100000", "4294967296", "9" * 20, "9" * 5000)
]


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A command run here sets the process's thread pools: put back the worker's counts afterwards."""
    with threadpool_limits(limits=None):
        torch = sys.modules.get("torch")
        before = torch.get_num_threads() if torch is not None else None
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        yield
        if torch is not None and before is not None:
            torch.set_num_threads(before)


def _commands() -> list[str]:
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


def _one_error_line(err: str, prefix: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, err
    return lines[0]


# -- --threads and OMP_NUM_THREADS: at most MAX_THREADS ------------------------------------------------


@pytest.mark.parametrize("command", _commands())
@pytest.mark.parametrize("count", TOO_MANY)
def test_every_command_refuses_more_threads_than_the_cap_naming_threads(
    command: str, count: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([command, "--threads", count])
    assert exc.value.code == exit_codes.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    line = _one_error_line(captured.err, f"ddcl-incrt {command}: error: ")
    assert f"argument --threads: expected at most {MAX_THREADS} threads" in line
    assert len(line) < 300  # one readable line, even for a count of 5000 digits


@pytest.mark.parametrize("command", _commands())
def test_every_command_accepts_the_cap_and_one(command: str) -> None:
    parser = build_parser()
    for count in ("1", str(MAX_THREADS)):
        argv = [command, "--threads", count]
        if command == "conformance":  # it needs something to compare; parsing is what is checked here
            argv += ["--outputs", "x"]
        assert parser.parse_args(argv).threads == int(count)


def test_the_thread_type_keeps_its_lower_bound_message() -> None:
    assert thread_count(" 7 ") == 7
    for bad in ("0", "-2", "x", "-" + "9" * 5000):
        with pytest.raises(Exception, match="expected a positive integer"):
            thread_count(bad)


def test_an_omp_num_threads_above_the_cap_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was an OverflowError traceback (exit 3) for ``docs --path spec``, which computes nothing."""
    monkeypatch.setenv("OMP_NUM_THREADS", "99999999999999999999")
    assert main(["docs", "--path", "spec"]) == exit_codes.USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    line = _one_error_line(captured.err, "ddcl-incrt docs: error: ")
    assert f"OMP_NUM_THREADS: expected at most {MAX_THREADS} threads" in line
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the valid case: the command runs
    assert main(["docs", "--path", "spec"]) == exit_codes.OK
    assert capsys.readouterr().out.strip().endswith("spec.md")


# -- cluster --seeds: a count, at most CLUSTER_MAX_SEEDS -----------------------------------------------


@pytest.mark.parametrize(
    "count", [str(CLUSTER_MAX_SEEDS + 1), "4294967297", "9" * 20, "9" * 5000], ids=["cap+1", "2**32+1", "20", "5000"]
)
def test_cluster_refuses_more_seeds_than_the_cap_naming_seeds(count: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``--seeds 99999999999999999999`` was an OverflowError, ``4294967297`` a MemoryError (exit 3)."""
    with pytest.raises(SystemExit) as exc:
        main(["cluster", "--quick", "--seeds", count])
    assert exc.value.code == exit_codes.USAGE
    line = _one_error_line(capsys.readouterr().err, "ddcl-incrt cluster: error: ")
    assert f"argument --seeds: expected at most {CLUSTER_MAX_SEEDS} seeds" in line


def test_cluster_accepts_the_cap_and_runs_one_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cluster_seed_count(str(CLUSTER_MAX_SEEDS)) == CLUSTER_MAX_SEEDS
    assert build_parser().parse_args(["cluster", "--seeds", str(CLUSTER_MAX_SEEDS)]).seeds == CLUSTER_MAX_SEEDS
    argv = ["cluster", "--quick", "--seeds", "1", "--datasets", "blobs", "--settings", "kmeans"]
    assert main([*argv, "--out", str(tmp_path / "c")]) == exit_codes.OK
    assert (tmp_path / "c" / "cluster.json").exists()
    capsys.readouterr()


def test_the_cluster_study_refuses_too_many_seeds_before_touching_out(tmp_path: Path) -> None:
    """Called from Python (not through argparse) the study refuses the same counts, naming ``seeds``,
    before it creates its output folder."""
    from ddcl_incrt.studies import cluster

    out = tmp_path / "never"
    for seeds in (CLUSTER_MAX_SEEDS + 1, 2**32 + 1, 10**5000):
        with pytest.raises(ValueError, match=f"seeds: expected at most {CLUSTER_MAX_SEEDS} seeds"):
            cluster.run_cli(out=out, seeds=seeds, datasets=["blobs"], quick=True, settings=["kmeans"])
    assert not out.exists()


# -- standard output: its reader gone (141, silent), or closed from the start (2, one line) -------------


def _with_reader_gone(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``ddcl-incrt ARGV | true``: the pipe's read end is closed before the command writes anything, so
    its first write to stdout fails with EPIPE (Python ignores SIGPIPE) whatever the timing."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "ddcl_incrt.cli", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize("argv", [["docs", "spec"], ["docs", "--path", "spec"], ["claims"], ["falsify"]])
def test_a_reader_that_went_away_stops_the_command_silently_with_141(argv: list[str]) -> None:
    """``falsify | head -1`` exited 1 ("a check failed") with nothing said: rich's own handling."""
    done = _with_reader_gone(argv)
    assert (done.returncode, done.stderr) == (exit_codes.OUTPUT_CLOSED, "")


def test_a_reader_that_leaves_midway_through_a_long_document_stops_the_command_with_141() -> None:
    """``docs theory | head -1`` exited 0: the document goes out in one write, and CPython's one large
    write to a pipe whose reader leaves midway writes what fits and drops the rest without an error, so
    only the check of standard output when the command returns sees the reader gone. The pipe is shrunk
    to 4 KB so that the reader leaves with most of the 77 KB document still unwritten, whatever the
    system's default pipe size."""
    fcntl = pytest.importorskip("fcntl")
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("no F_SETPIPE_SZ (not Linux): the pipe's size cannot be set")
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, 4096)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ddcl_incrt.cli", "docs", "theory"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as reader:
        first = reader.read(100)  # the first bytes, then the reader goes away, as `head -1` does
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert first.startswith(b"# ")
    assert (proc.returncode, err) == (exit_codes.OUTPUT_CLOSED, "")


def test_the_same_commands_into_a_live_pipe_exit_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ddcl_incrt.cli", "docs", "--path", "spec"],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr, done.stdout.strip().endswith("spec.md")) == (0, "", True)


def test_a_closed_stdout_is_a_usage_error_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``docs spec >&-`` was an AttributeError traceback (exit 3); ``claims >&-`` exited 0 having
    printed nothing anywhere. Python sets ``sys.stdout`` to ``None`` when descriptor 1 is closed."""
    from ddcl_incrt import installation

    def no_work() -> NoReturn:
        raise AssertionError("the command ran with nowhere to print")

    monkeypatch.setattr(installation, "docs_dir", no_work)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(sys, "stdout", None)
    assert main(["docs", "spec"]) == exit_codes.USAGE
    line = _one_error_line(err.getvalue(), "ddcl-incrt docs: error: ")
    assert "standard output is closed" in line


def test_a_closed_stdout_in_a_real_process() -> None:
    done = subprocess.run(
        ["sh", "-c", 'exec "$0" -m ddcl_incrt.cli docs spec >&-', sys.executable],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == exit_codes.USAGE, done.stderr
    assert "standard output is closed" in _one_error_line(done.stderr, "ddcl-incrt docs: error: ")


def test_the_commands_console_raises_broken_pipe_not_rich_s_exit_1() -> None:
    """rich's own console turns EPIPE into ``SystemExit(1)``: exit 1, a failed check, here."""

    class Gone(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    console = type(exit_codes.command_console())(file=Gone())
    with pytest.raises(BrokenPipeError):
        console.print("a row")


@contextmanager
def _stdout_into_a_pipe(*, reader: bool) -> Iterator[None]:
    """``sys.stdout`` a real pipe's write end, its reader kept open or closed (``cmd | true``)."""
    read, write = os.pipe()
    if not reader:
        os.close(read)
    saved, sys.stdout = sys.stdout, open(write, "w", encoding="utf-8")  # noqa: SIM115  # closed below
    try:
        yield
    finally:
        sys.stdout, out = saved, sys.stdout
        out.close()
        if reader:
            os.close(read)


def _broken_pipe() -> int:
    raise BrokenPipeError(32, "Broken pipe")


def test_run_command_maps_each_ending_to_its_code(capsys: pytest.CaptureFixture[str]) -> None:
    def bad() -> int:
        raise ValueError("--x: bad")

    with _stdout_into_a_pipe(reader=False):
        assert exit_codes.run_command("docs", _broken_pipe) == exit_codes.OUTPUT_CLOSED
    assert capsys.readouterr().err == ""  # silent, as a command killed by SIGPIPE is
    assert exit_codes.run_command("docs", bad) == exit_codes.USAGE
    assert capsys.readouterr().err == "ddcl-incrt docs: error: --x: bad\n"
    assert exit_codes.run_command("docs", lambda: exit_codes.FAILED_CHECK) == exit_codes.FAILED_CHECK

    def diverged() -> int:  # the engines' refusal of a run its configuration took beyond float range
        raise FloatingPointError("Y: 8 non-finite entries at step 4 (training diverged; lower the learning rate)")

    assert exit_codes.run_command("docs", diverged) == exit_codes.USAGE  # was 3, "a bug", with a traceback
    assert capsys.readouterr().err == (
        "ddcl-incrt docs: error: Y: 8 non-finite entries at step 4 (training diverged; lower the learning rate)\n"
    )


def test_a_reader_gone_with_output_still_buffered_is_141(monkeypatch: pytest.MonkeyPatch) -> None:
    """The body's ``print`` left its line in the buffer; the flush in the runner meets the closed pipe."""

    def prints() -> int:
        print("a row")
        return exit_codes.OK

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with _stdout_into_a_pipe(reader=False):
        assert exit_codes.run_command("docs", prints) == exit_codes.OUTPUT_CLOSED
    assert err.getvalue() == ""


@pytest.mark.parametrize("stdout", ["a live pipe", "a capture"])
def test_a_broken_pipe_that_is_not_stdout_s_is_an_internal_error(
    stdout: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subprocess's or a worker's pipe broke while standard output is fine: it was exit 141 with nothing
    said, as if the user's ``| head`` had closed; now the traceback and exit 3, as any unexpected error."""
    if stdout == "a live pipe":
        with _stdout_into_a_pipe(reader=True):
            code = exit_codes.run_command("docs", _broken_pipe)
    else:
        code = exit_codes.run_command("docs", _broken_pipe)
    assert code == exit_codes.INTERNAL
    err = capsys.readouterr().err
    assert "BrokenPipeError: [Errno 32] Broken pipe" in err
    assert err.rstrip().endswith(
        f"ddcl-incrt docs: internal error (a bug, exit code {exit_codes.INTERNAL}): "
        "please report it with the traceback above"
    )


def test_the_pipe_exit_code_is_distinct_and_documented() -> None:
    codes = [exit_codes.OK, exit_codes.FAILED_CHECK, exit_codes.USAGE, exit_codes.INTERNAL]
    codes += [exit_codes.INTERRUPTED, exit_codes.OUTPUT_CLOSED]
    assert codes == [0, 1, 2, 3, 130, 141]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = readme[readme.index("Exit codes, for every command") :].split("\nThe second installs")[0]
    assert "**141**" in paragraph


# -- python -m ddcl_incrt.bench: the command's runner, not a bare call --------------------------------


def test_python_m_bench_refuses_too_many_threads_naming_threads(capsys: pytest.CaptureFixture[str]) -> None:
    """It was a ctypes.ArgumentError traceback, exit 1."""
    pytest.importorskip("torch")
    from ddcl_incrt.bench import command

    with pytest.raises(SystemExit) as exc:
        command.main(["--threads", "99999999999999999999"])
    assert exc.value.code == exit_codes.USAGE
    line = _one_error_line(capsys.readouterr().err, "python -m ddcl_incrt.bench: error: ")
    assert f"argument --threads: expected at most {MAX_THREADS} threads" in line


def test_python_m_bench_reports_as_the_command_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C: one line and 130 (it was a KeyboardInterrupt traceback); a bug: its traceback and 3; a
    bad option found by the body: one line and 2; the valid run: its code."""
    pytest.importorskip("torch")
    from ddcl_incrt.bench import command

    def stops(*_: object) -> NoReturn:
        raise KeyboardInterrupt

    def crashes(*_: object) -> NoReturn:
        raise RuntimeError("planted bug")

    def refuses(*_: object) -> NoReturn:
        raise ValueError("--device: planted")

    expected = [
        (stops, exit_codes.INTERRUPTED, "ddcl-incrt bench: interrupted"),
        (crashes, exit_codes.INTERNAL, "RuntimeError: planted bug"),
        (refuses, exit_codes.USAGE, "ddcl-incrt bench: error: --device: planted"),
        (lambda *_: exit_codes.OK, exit_codes.OK, ""),
    ]
    for run_cli, code, needle in expected:
        monkeypatch.setattr(command, "run_cli", run_cli)
        try:
            got = command.main(["--quick", "--threads", "1"])
        except BaseException as exc:  # KeyboardInterrupt too: it would stop the test run, not fail the test
            pytest.fail(f"{needle or 'the valid run'}: {exc!r} escaped python -m ddcl_incrt.bench's main")
        assert got == code
        assert needle in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_python_m_bench_stopped_by_a_signal_prints_one_line_and_exits_130(sig: signal.Signals, tmp_path: Path) -> None:
    """SIGTERM killed it silently (return code -15); SIGINT printed a KeyboardInterrupt traceback. The
    signal is sent once the bench has printed its header, so it lands in the measurements."""
    pytest.importorskip("torch")
    argv = ["-m", "ddcl_incrt.bench", "--quick", "--no-compile", "--device", "cpu", "--out", str(tmp_path / "b.json")]
    proc = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        # a test run started in the background inherits SIGINT ignored, and so would the child
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first, "the bench printed nothing"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    how = "terminated (SIGTERM)" if sig == signal.SIGTERM else "interrupted"
    assert proc.returncode == exit_codes.INTERRUPTED, err
    assert _one_error_line(err, "ddcl-incrt bench: ").startswith(f"ddcl-incrt bench: {how}: ")
