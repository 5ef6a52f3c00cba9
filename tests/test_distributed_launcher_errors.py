"""The distributed launcher's errors (``python -m accelerated.distributed``, under torchrun): a bad
``--config`` (missing, a folder, a FIFO, empty, not UTF-8, an invalid or unknown field), a bad number,
an unwritable ``--out`` or ``--checkpoint-dir``, a bad ``--resume`` checkpoint and a missing torchrun
environment are each one line on stderr naming the option or the file, exit code 2, before any
training; a record that cannot be written after the run goes to a temporary folder the error names;
Ctrl-C names rank 0's checkpoint and exits 130. One process (``WORLD_SIZE=1``, gloo) in this one."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytest

pytest.importorskip("torch")

import torch.distributed as dist
from _small_run import LAYER, RUN

from accelerated import distributed
from ddcl_incrt import exit_codes
from training.checkpoint import Checkpoint
from training.record import RunRecord
from training.trainer import ProgressInfo

PROG = "torchrun --nproc_per_node=N -m accelerated.distributed: error: "
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK")
# A run of a few steps on the planted task (as tests/test_distributed.py's launcher test).
TINY_LAYER = {"d_in": 6, "d": 8, "d_k": 4, "d_v": 4, "seq_len": 8, "K_max": 8, "n_classes": 2, "T_P": 1.0}
TINY_TRAIN = {"steps": 4, "batch_size": 8, "check_every": 2, "probe_size": 16, "calibration_probes": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def no_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def one_rank(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchrun's environment for a world of one process."""
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    for name, value in {**env, "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"layer_config": {**TINY_LAYER, "lambda_q": 0.1}, "train_config": TINY_TRAIN}))
    return path


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines  # one line, no traceback
    assert lines[0].startswith(PROG), lines[0]
    return lines[0].removeprefix(PROG)


def _launch(config: Path, out: Path, *extra: str) -> int:
    return distributed.main(["--dataset", "planted", "--config", str(config), "--out", str(out), *extra])


def _bad_configs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = {"layer_config": asdict(LAYER), "train_config": asdict(RUN)}
    texts: dict[str, tuple[str | bytes, str]] = {
        "empty": ("", "not a JSON configuration (JSONDecodeError"),
        "not UTF-8": (b"\xff\xfe", "not a JSON configuration (UnicodeDecodeError"),
        "truncated": ('{"layer_config": ', "not a JSON configuration (JSONDecodeError"),
        "NaN": (json.dumps(good).replace('"T_P": 1.0', '"T_P": NaN'), "not a JSON configuration (ValueError: NaN"),
        "invalid field": (
            json.dumps({**good, "layer_config": {**good["layer_config"], "T_P": -1.0}}),
            "layer_config: LayerConfig.T_P",
        ),
        "unknown key": (json.dumps({**good, "extra": 1}), "unknown field(s) ['extra']"),
    }
    cases: dict[str, tuple[Path, str]] = {}
    for name, (text, expected) in texts.items():
        path = tmp_path / f"{name.replace(' ', '_')}.json"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        cases[name] = (path, expected)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    cases["missing"] = (tmp_path / "missing.json", "cannot be read (FileNotFoundError")
    cases["folder"] = (folder, "cannot be read (NotARegularFileError: not a regular file (a folder))")
    cases["FIFO"] = (fifo, "cannot be read (NotARegularFileError: not a regular file (a FIFO))")
    return cases


# The FIFO in a child process (test_a_fifo_config_does_not_hang_the_launcher), under a timeout: read
# here, a FIFO that blocked would hang the test run instead of failing it.
CONFIG_CASES = ["empty", "not UTF-8", "truncated", "NaN", "invalid field", "unknown key", "missing", "folder"]


@pytest.mark.parametrize("case", CONFIG_CASES)
def test_a_bad_config_is_one_line_naming_the_file(
    case: str, tmp_path: Path, no_torchrun: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked before torchrun's environment: the file's problem is reported even outside torchrun."""
    path, expected = _bad_configs(tmp_path)[case]
    assert _launch(path, tmp_path / "r.json") == exit_codes.USAGE
    line = _error_line(capsys)
    assert line.startswith(f"{path}: "), line
    assert expected in line, line
    assert not (tmp_path / "r.json").exists()


def test_a_fifo_config_does_not_hang_the_launcher(tmp_path: Path) -> None:
    """As a user runs it (a FIFO without a writer used to block the launcher forever)."""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    argv = ["--dataset", "digits", "--config", str(fifo), "--out", str(tmp_path / "r.json")]
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_ENV}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "accelerated.distributed", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == exit_codes.USAGE, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"{PROG}{fifo}: cannot be read (NotARegularFileError: not a regular file (a FIFO))"
    ]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--seed", "-1", "argument --seed: expected an integer in [0, 2**32 - 1], got -1"),
        ("--seed", str(2**32), f"argument --seed: expected an integer in [0, 2**32 - 1], got {2**32}"),
        ("--checkpoint-every", "-1", "argument --checkpoint-every: expected an integer >= 0, got -1"),
        ("--checkpoint-every", "5", "--checkpoint-every: checkpoints need --checkpoint-dir (where rank 0 writes them)"),
    ],
)
def test_a_bad_number_is_refused_by_the_parser(
    option: str, value: str, expected: str, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        _launch(config, tmp_path / "r.json", option, value)
    assert exc.value.code == exit_codes.USAGE
    assert capsys.readouterr().err.strip().splitlines()[-1] == PROG + expected


@pytest.mark.parametrize("layout", ["a folder", "under a file", "checkpoint dir is a file"])
def test_output_paths_are_checked_before_torchrun_and_training(
    layout: str, config: Path, tmp_path: Path, one_rank: None, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("the user's file", encoding="utf-8")
    out, extra, expected = tmp_path / "r.json", [], ""
    if layout == "a folder":
        out, expected = tmp_path, f"--out {tmp_path}: is a folder (give a file name)"
    elif layout == "under a file":
        out, expected = a_file / "r.json", f"--out {a_file / 'r.json'}: cannot be created: {a_file} exists"
    else:
        extra, expected = ["--checkpoint-dir", str(a_file)], f"--checkpoint-dir {a_file}: exists and is not a folder"
    assert _launch(config, out, *extra) == exit_codes.USAGE
    assert _error_line(capsys).startswith(expected)
    assert not dist.is_initialized()
    assert a_file.read_text(encoding="utf-8") == "the user's file"


def test_a_bad_resume_checkpoint_is_one_line_before_training(
    config: Path, tmp_path: Path, one_rank: None, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "step-00000002.ckpt.npz"
    garbage.write_bytes(b"not a checkpoint")
    assert _launch(config, tmp_path / "r.json", "--resume", str(garbage)) == exit_codes.USAGE
    assert _error_line(capsys).startswith(f"{garbage}: not a checkpoint")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _launch(config, tmp_path / "r.json", "--resume", str(empty)) == exit_codes.USAGE
    assert f"the folder {empty} holds no step-*.ckpt.npz checkpoint" in _error_line(capsys)
    assert not dist.is_initialized()


def test_no_torchrun_environment_is_one_line(
    config: Path, tmp_path: Path, no_torchrun: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _launch(config, tmp_path / "r.json") == exit_codes.USAGE
    line = _error_line(capsys)
    assert line.startswith("cannot start the process group: environment: ['RANK', 'WORLD_SIZE'"), line
    assert "launch with torchrun" in line


def test_a_record_that_cannot_be_written_goes_to_a_temporary_folder(
    config: Path, tmp_path: Path, one_rank: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The --out folder is fine before the run and the disk fills during it: the record is kept."""
    fallback = tmp_path / "tmp"
    fallback.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(fallback))
    out = tmp_path / "out" / "r.json"
    save = RunRecord.save
    failed: list[Path] = []

    def full_disk_at_out(record: RunRecord, path: Path) -> Path:
        if Path(path) == out and not failed:
            failed.append(out)
            raise OSError(errno.ENOSPC, "No space left on device")
        return save(record, path)

    monkeypatch.setattr(RunRecord, "save", full_disk_at_out)
    assert _launch(config, out) == exit_codes.USAGE
    assert not dist.is_initialized()
    (kept,) = fallback.glob("ddcl-incrt-*/r.json")
    line = _error_line(capsys)
    assert line == (
        f"--out {out}: cannot write there (OSError: [Errno {errno.ENOSPC}] No space left on device); "
        f"the results were written to {kept} instead"
    )
    assert len(RunRecord.load(kept).losses.L) == TINY_TRAIN["steps"]


def test_a_run_the_configuration_makes_diverge_is_one_line_with_exit_2(
    tmp_path: Path, one_rank: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The weights' and prototypes' learning rates 1e3 (sgd): within a few steps the layer overflows
    float64. The engine's refusal (a FloatingPointError naming the step and the remedy) was an "internal
    error (a bug)" with its traceback, exit 3; it is the configuration's doing, so one line and exit 2,
    as a bad --config."""
    path = tmp_path / "diverging.json"
    lr = {"rest": 1e3, "prototypes": 1e3, "temperatures": 1e-2}  # s stays in range: the layer overflows
    train = {**TINY_TRAIN, "steps": 30, "check_every": 50, "optimizer": "sgd", "lr": lr}
    path.write_text(json.dumps({"layer_config": {**TINY_LAYER, "lambda_q": 0.1}, "train_config": train}))
    assert _launch(path, tmp_path / "r.json") == exit_codes.USAGE
    assert not dist.is_initialized()
    line = _error_line(capsys)
    assert "non-finite entries at step" in line, line
    assert "training diverged" in line, line
    assert not (tmp_path / "r.json").exists()


def test_ctrl_c_names_rank_0s_checkpoint(
    config: Path, tmp_path: Path, one_rank: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def stop_at_2(info: ProgressInfo) -> None:
        if info.step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "_print_progress", stop_at_2)
    checkpoints = tmp_path / "ck"
    out = tmp_path / "r.json"
    assert _launch(config, out, "--checkpoint-dir", str(checkpoints)) == exit_codes.INTERRUPTED
    assert not dist.is_initialized()
    line = capsys.readouterr().err.strip()
    saved = checkpoints / "step-00000002.ckpt.npz"
    where = f"training interrupted: the state after step 2 is in {saved} (resume from it)"
    hint = " (run the same command with --resume and that path)"  # as the ddcl-incrt commands say it
    assert line == f"{PROG.removesuffix('error: ')}interrupted: {where}{hint}"
    assert Checkpoint.load(saved).step == 2
    assert not out.exists()


def test_rank_0s_failure_is_raised_as_the_same_kind_on_every_rank() -> None:
    """Rank 0's growth check failing on an input (a ValueError: exit code 2 there) is an input error on
    the other ranks too, not a RuntimeError reported as a bug (exit code 3); anything else stays one."""
    from accelerated.distributed import RankFailure

    assert type(RankFailure("θ not resolvable", input_error=True).exception()) is ValueError
    assert type(RankFailure("planted", input_error=False).exception()) is RuntimeError
    assert str(RankFailure("rank 0's growth check failed", input_error=True).exception()) == (
        "rank 0's growth check failed"
    )
