"""CLI errors: every error goes to stderr as ``ddcl-incrt <command>: error: …`` with exit code 2, naming
the option or the file; output paths are checked before any work, and a finished run whose results
cannot be written where asked keeps them in a temporary folder that the error names."""

from __future__ import annotations

import errno
import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest
from _small_run import RUN, small_run

from ddcl_incrt import exit_codes
from ddcl_incrt.audit import run as audit_run
from ddcl_incrt.cli import build_parser, main
from proofs_check import ALL_STEPS
from training.record import RunRecord

T = TypeVar("T")
REFERENCE = "ddcl_incrt.conformance.adapters.reference:reference_adapter"


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


# --------------------------------------------------------------------------------------------------
# Output paths: checked before any work, and a finished run is never lost to them
# --------------------------------------------------------------------------------------------------


def _no_work(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("the command started its work before checking its output path")


def _error_line(err: str, command: str) -> str:
    """The one error line on stderr (plain text, never wrapped), and no traceback; progress lines
    (the cluster study's) may come before it."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("ddcl-incrt ")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ddcl-incrt {command}: error: "), err
    return lines[0]


@pytest.fixture
def regular_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("the user's file", encoding="utf-8")
    return path


@pytest.fixture
def fallback_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where a command's results go when writing them where asked fails (a temporary folder)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _fails_once_for(path: Path, write: Callable[..., T], *, position: int = 0) -> Callable[..., T]:
    """``write``, except that its first call whose argument at ``position`` is ``path`` raises a full
    disk's OSError."""
    calls: list[Path] = []

    def flaky(*args: object) -> T:
        if Path(str(args[position])) == path and not calls:
            calls.append(path)
            raise OSError(errno.ENOSPC, "No space left on device")
        return write(*args)

    return flaky


def _kept(fallback_dir: Path) -> Path:
    """The one folder the command made in the temporary directory (torch may add its own there)."""
    (folder,) = [p for p in fallback_dir.iterdir() if p.name.startswith("ddcl-incrt-")]
    return folder


AUDIT = ["audit", "--quick", "--dataset", "planted", "--steps", "20", "--engine", "reference"]


@pytest.mark.parametrize(
    "layout", ["existing file", "under a file", "figures is a file", "report.md is a folder", "a figure is a folder"]
)
def test_audit_checks_out_before_training(
    tmp_path: Path, regular_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], layout: str
) -> None:
    monkeypatch.setattr(audit_run, "run_training", _no_work)
    out = {"existing file": regular_file, "under a file": regular_file / "audit"}.get(layout, tmp_path / "audit")
    if layout == "figures is a file":
        out.mkdir()
        (out / "figures").write_text("x", encoding="utf-8")
    if layout == "report.md is a folder":
        (out / "report.md").mkdir(parents=True)
    if layout == "a figure is a folder":  # found before training, not after the other figures are written
        (out / "figures" / "heads.png").mkdir(parents=True)
    assert main([*AUDIT, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    line = _error_line(captured.err, "audit")
    assert f"--out {out}: " in line
    assert regular_file.read_text(encoding="utf-8") == "the user's file"


def test_an_audit_whose_report_cannot_be_written_keeps_it_in_a_temporary_folder(
    tmp_path: Path, fallback_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training and the report's figures stand in (the record is a real one; drawing the figures takes
    seconds): what matters is that the finished run's record ends up somewhere, and the error says where."""
    from ddcl_incrt.audit import report

    record = small_run(replace(RUN, steps=20, eval_every=10))  # a short real run: the record is what is kept
    monkeypatch.setattr(audit_run, "run_training", lambda opts, console: (record, "reference (NumPy, float64)"))

    def record_only(folder: Path, rec: RunRecord, summary: object, studies: object) -> dict[str, Path]:
        return {"record.json": rec.save(folder / "record.json")}

    out = tmp_path / "audit"
    monkeypatch.setattr(report, "write_report", _fails_once_for(out, record_only))
    assert main([*AUDIT, "--out", str(out)]) == 2
    line = _error_line(capsys.readouterr().err, "audit")
    kept = _kept(fallback_dir)
    assert f"--out {out}: cannot write there (OSError: [Errno {errno.ENOSPC}] No space left on device)" in line
    assert f"the results were written to {kept} instead" in line
    assert RunRecord.load(kept / "record.json").losses.L == record.losses.L


def test_cluster_checks_out_before_the_study_and_keeps_a_finished_one(
    tmp_path: Path,
    regular_file: Path,
    fallback_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ddcl_incrt.studies import cluster

    argv = ["cluster", "--quick", "--seeds", "1", "--datasets", "blobs"]
    with monkeypatch.context() as m:
        m.setattr(cluster, "run_study", _no_work)
        assert main([*argv, "--out", str(regular_file)]) == 2
        assert f"--out {regular_file}: exists and is not a folder" in _error_line(capsys.readouterr().err, "cluster")
        (tmp_path / "c" / "cluster.json").mkdir(parents=True)
        assert main([*argv, "--out", str(tmp_path / "c")]) == 2
        assert "cluster.json is a folder" in _error_line(capsys.readouterr().err, "cluster")
    out = tmp_path / "study"
    monkeypatch.setattr(cluster, "write_outputs", _fails_once_for(out, cluster.write_outputs, position=1))
    assert main([*argv, "--out", str(out)]) == 2
    line = _error_line(capsys.readouterr().err, "cluster")
    kept = _kept(fallback_dir)
    assert f"--out {out}: cannot write there" in line
    assert f"written to {kept} instead" in line
    assert sorted(p.name for p in kept.iterdir()) == sorted(cluster.OUTPUT_FILES)


def test_bench_checks_out_before_measuring(
    tmp_path: Path, regular_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from ddcl_incrt.bench import command

    monkeypatch.setattr(command, "machine", _no_work)
    for out, problem in ((tmp_path, "is a folder"), (regular_file / "bench.json", "cannot be created")):
        assert main(["bench", "--quick", "--device", "cpu", "--out", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert f"--out {out}: {problem}" in _error_line(captured.err, "bench")


def test_a_bench_whose_report_cannot_be_written_keeps_it_in_a_temporary_folder(
    tmp_path: Path, fallback_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sections stand in for minutes of measurements; every save after the failure goes to the
    temporary file, so the report there is the complete one."""
    pytest.importorskip("torch")
    from ddcl_incrt.bench import command

    monkeypatch.setattr(command, "machine", lambda opts: {"stand-in": True})
    monkeypatch.setattr(command, "header", lambda report: "header")
    monkeypatch.setattr(command, "prime", lambda device: None)
    for name in ("training_step_section", "growth_check_section", "scaling_section"):
        monkeypatch.setattr(command, name, lambda *args: [])
    monkeypatch.setattr(command, "reference_section", lambda *args: [])
    monkeypatch.setattr(command, "flops_section", lambda *args: {"measured": 1.0})
    monkeypatch.setattr(command, "print_section", lambda *args: None)
    out = tmp_path / "bench.json"
    monkeypatch.setattr(command, "write_json_atomic", _fails_once_for(out, command.write_json_atomic))
    assert main(["bench", "--quick", "--device", "cpu", "--out", str(out)]) == 2
    line = _error_line(capsys.readouterr().err, "bench")
    folder = _kept(fallback_dir)
    kept = folder / "bench.json"
    assert f"--out {out}: cannot write there" in line
    assert f"written to {kept} instead" in line
    report = json.loads(kept.read_text(encoding="utf-8"))
    assert (report["complete"], report["flops"]) == (True, {"measured": 1.0})
    assert not out.exists()


@pytest.mark.parametrize("option", ["--json", "--markdown"])
def test_conformance_checks_its_report_files_before_comparing(
    tmp_path: Path, regular_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    from ddcl_incrt.conformance import runner

    monkeypatch.setattr(runner, "run_adapter", _no_work)
    for path, problem in ((tmp_path, "is a folder"), (regular_file / "r.json", "cannot be created")):
        assert main(["conformance", "--adapter", REFERENCE, option, str(path)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert f"{option} {path}: {problem}" in _error_line(captured.err, "conformance")


def test_a_conformance_report_that_cannot_be_written_is_kept_in_a_temporary_folder(
    tmp_path: Path, fallback_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ddcl_incrt import output_paths
    from training.files import write_atomic

    out = tmp_path / "report.json"
    monkeypatch.setattr(output_paths, "write_atomic", _fails_once_for(out, write_atomic))
    assert main(["conformance", "--adapter", REFERENCE, "--only", "mean_entropy/basic", "--json", str(out)]) == 2
    line = _error_line(capsys.readouterr().err, "conformance")
    folder = _kept(fallback_dir)
    kept = folder / "report.json"
    assert f"--json {out}: cannot write there" in line
    assert f"written to {kept} instead" in line
    assert json.loads(kept.read_text(encoding="utf-8"))["counts"] == {"pass": 1}


def test_write_inputs_never_displaces_a_file_or_a_foreign_folder(
    tmp_path: Path, regular_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = tmp_path / "work"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("months of work", encoding="utf-8")
    for target, problem in ((regular_file, "exists and is not a folder"), (foreign, "not a vector directory")):
        assert main(["conformance", "--write-inputs", str(target)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        line = _error_line(captured.err, "conformance")
        assert str(target) in line
        assert problem in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "work"]
    assert regular_file.read_text(encoding="utf-8") == "the user's file"
    assert [p.name for p in foreign.iterdir()] == ["thesis.tex"]


# --------------------------------------------------------------------------------------------------
# Every error on stderr, naming the option or the file
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["audit", "--seed", "-1"], "argument --seed: expected an integer in [0, 2**32 - 1], got -1"),
        (["audit", "--seed", str(2**32)], f"argument --seed: expected an integer in [0, 2**32 - 1], got {2**32}"),
        (["audit", "--seed", "one"], "argument --seed: expected an integer in [0, 2**32 - 1], got 'one'"),
        (["bench", "--repeats", "0"], "argument --repeats: expected a positive integer, got 0"),
        (["bench", "--threads", "-2"], "argument --threads: expected a positive integer, got -2"),
        (
            ["conformance", "--adapter", REFERENCE, "--property-examples", "0"],
            "argument --property-examples: expected a positive integer, got 0",
        ),
    ],
)
def test_bad_numbers_name_the_option_and_what_is_allowed(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert needle in captured.err


def test_the_largest_seed_is_accepted_by_the_data_split() -> None:
    """2**32 - 1, the top of --seed's range, is a seed scikit-learn's split and NumPy take."""
    from training.data import named_dataset

    assert build_parser().parse_args(["audit", "--seed", str(2**32 - 1)]).seed == 2**32 - 1
    named_dataset("digits", 2**32 - 1)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["conformance", "--adapter", "no.such:thing"], "cannot import 'no.such'"),
        (["conformance", "--outputs", "/nonexistent/outputs"], "no manifest.json"),
        (["conformance", "--adapter", REFERENCE, "--tolerances", "/nonexistent/tol.json"], "/nonexistent/tol.json"),
    ],
)
def test_conformance_errors_go_to_stderr(argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert needle in _error_line(captured.err, "conformance")


def test_bench_option_errors_go_to_stderr_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    assert main(["bench", "--quick", "--device", "cuda"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--device: 'cuda' asked for" in _error_line(captured.err, "bench")


def test_an_os_error_is_an_error_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from ddcl_incrt.studies import cluster

    def denied(**kwargs: object) -> NoReturn:
        raise PermissionError(errno.EACCES, "Permission denied", "/data/cluster.json")

    monkeypatch.setattr(cluster, "run_cli", denied)
    assert main(["cluster", "--quick"]) == 2
    line = _error_line(capsys.readouterr().err, "cluster")
    assert "Permission denied: '/data/cluster.json'" in line


def test_a_full_disk_at_a_checkpoint_names_the_file_and_the_earlier_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An outside tester's case: a full disk at a scheduled checkpoint said only "[Errno 28] No space left
    on device". The line now carries the trainer's note: which checkpoint could not be written, and the
    newest one that was."""
    import training.checkpoint as checkpoint

    out = tmp_path / "audit"
    failing = out / "checkpoints" / "step-00000040.ckpt.npz"
    real = checkpoint.write_atomic

    def disk_full_at_40(path: Path, data: bytes) -> Path:
        if Path(path) == failing:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(checkpoint, "write_atomic", disk_full_at_40)
    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "60", "--engine", "reference", "--out", str(out)]
    assert main([*argv, "--checkpoint-every", "20"]) == 2
    line = _error_line(capsys.readouterr().err, "audit")
    assert "No space left on device" in line
    # a full disk is no interruption: no "--resume" hint, which would meet the same full disk
    assert f"[training stopped by OSError after step 40, and writing its checkpoint {failing} failed" in line
    assert "resume" not in line
    assert f"the newest earlier checkpoint is {out / 'checkpoints' / 'step-00000020.ckpt.npz'}" in line


# -- exit codes: one meaning each (ddcl_incrt.exit_codes) ----------------------------------------------


def test_the_exit_codes_are_distinct() -> None:
    codes = [exit_codes.OK, exit_codes.FAILED_CHECK, exit_codes.USAGE, exit_codes.INTERNAL, exit_codes.INTERRUPTED]
    assert codes == [0, 1, 2, 3, 130]


def test_a_crash_inside_a_command_is_an_internal_error_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def crash(*_: object, **__: object) -> NoReturn:
        raise RuntimeError("planted bug")

    monkeypatch.setattr(audit_run, "run_training", crash)
    assert main(["audit", "--quick", "--out", str(tmp_path / "out")]) == exit_codes.INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "RuntimeError: planted bug" in err
    assert "ddcl-incrt audit: internal error" in err


def test_a_missing_engine_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(audit_run, "torch_available", lambda: False)
    assert main(["audit", "--quick", "--engine", "accelerated", "--out", "unused"]) == exit_codes.USAGE
    assert "--engine accelerated needs PyTorch" in capsys.readouterr().err


def test_ctrl_c_during_training_prints_one_line_naming_the_checkpoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Interrupted at step 25 of 40 (checkpoints only on interruption): exit 130, one line on stderr that
    names the checkpoint of the last completed step, no traceback; resuming from it finishes the run."""
    real = audit_run.progress_bar

    @contextmanager
    def interrupting(*args: object, **kwargs: object) -> Iterator[Callable[[object], None]]:
        with real(*args, **kwargs) as update:  # type: ignore[arg-type]

            def stop_at_25(info: object) -> None:
                update(info)  # type: ignore[arg-type]
                if getattr(info, "step", 0) == 25:
                    raise KeyboardInterrupt

            yield stop_at_25

    monkeypatch.setattr(audit_run, "progress_bar", interrupting)
    out = tmp_path / "out"
    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "40", "--engine", "reference", "--out", str(out)]
    assert main([*argv, "--checkpoint-every", "0"]) == exit_codes.INTERRUPTED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    checkpoint = out / "checkpoints" / "step-00000025.ckpt.npz"
    assert err[0].startswith("ddcl-incrt audit: interrupted: training interrupted")
    assert str(checkpoint) in err[0]
    assert "--resume" in err[0]
    assert checkpoint.is_file()
    monkeypatch.setattr(audit_run, "progress_bar", real)
    assert main([*argv, "--resume", str(checkpoint)]) == exit_codes.OK


def test_version_help_and_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("ddcl-incrt ")
    parser = build_parser()
    assert "``" not in (parser.description or "")  # no raw reST in --help
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # type: ignore[union-attr]
        assert command.description, f"{name} --help has no description"


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["audit", "--quick", "--out", ""], "--out"),
        (["audit", "--quick", "--resume", ""], "--resume"),
        (["cluster", "--quick", "--out", ""], "--out"),
        (["bench", "--quick", "--out", ""], "--out"),
        (["conformance", "--outputs", ""], "--outputs"),
        (["conformance", "--write-inputs", ""], "--write-inputs"),
        (["conformance", "--json", "", "--adapter", "x:y"], "--json"),
    ],
)
def test_an_empty_path_is_refused_naming_its_option(
    argv: list[str], option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``type=Path`` would turn ``''`` into ``.`` and write into the current folder: refused by the parser,
    naming the option, before any work."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == exit_codes.USAGE
    err = capsys.readouterr().err
    assert f"argument {option}: expected a non-empty path" in err, err
    assert list(tmp_path.iterdir()) == []
