"""SIGTERM (what ``timeout``, batch schedulers and container stops send) stops a training command as
Ctrl-C does: the state of the last completed step is saved, one line on stderr names it, exit code
130 (docs/reliability.md). It used to kill the process with nothing saved and nothing said."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _snippets import child_env

from ddcl_incrt import exit_codes
from ddcl_incrt.cli import main, terminate_as_interrupt
from training.checkpoint import Checkpoint

# The CLI in a child process, with a hook that writes MARKER once the first step of training is done
# (so that the signal comes during training, not during the imports, however loaded the machine).
CHILD = """
import sys
from contextlib import contextmanager
from collections.abc import Callable
from pathlib import Path

from ddcl_incrt.audit import run as audit_run
from ddcl_incrt.cli import main

real = audit_run.progress_bar
marker = Path(sys.argv[1])


@contextmanager
def announcing(*args, **kwargs):
    with real(*args, **kwargs) as update:

        def update_and_announce(info):
            update(info)
            if info.step == 1:
                marker.write_text("training", encoding="utf-8")

        yield update_and_announce


audit_run.progress_bar = announcing
sys.exit(main(sys.argv[2:]))
"""


# The audit every child process here runs (with --steps, --out and --checkpoint-every added).
AUDIT = ["audit", "--quick", "--dataset", "planted", "--engine", "reference"]


def _audit_child(
    script: str,
    marker: Path,
    out: Path,
    *,
    steps: int,
    checkpoint_every: int,
    waiting_for: str,
    within_s: float,
    **popen: Any,
) -> subprocess.Popen[str]:
    """The audit in a child interpreter running ``script`` (given ``marker`` and the command line), returned
    once ``script`` has written ``marker``; killed, and the test failed naming ``waiting_for``, if it
    does not within ``within_s`` seconds."""
    argv = [*AUDIT, "--steps", str(steps), "--out", str(out), "--checkpoint-every", str(checkpoint_every)]
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(marker), *argv], env=child_env(), stderr=subprocess.PIPE, text=True, **popen
    )
    try:
        deadline = time.monotonic() + within_s
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"{waiting_for} was not reached: {proc.poll()}"
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc


def test_sigterm_during_training_saves_a_checkpoint_and_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "audit"
    proc = _audit_child(
        CHILD,
        tmp_path / "started",
        out,
        steps=100000,
        checkpoint_every=0,
        waiting_for="training",
        within_s=60,
        stdout=subprocess.PIPE,
    )
    try:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == exit_codes.INTERRUPTED, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines  # no traceback
    (saved,) = (out / "checkpoints").glob("step-*.ckpt.npz")
    assert lines[0] == (
        f"ddcl-incrt audit: terminated (SIGTERM): training interrupted: the state after step "
        f"{Checkpoint.load(saved).step} is in {saved} (resume from it) (run the same command with --resume and "
        "that path)"
    )
    assert Checkpoint.load(saved).step >= 1


def _terminate_me() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler runs at the next bytecode: never slept through


def test_sigterm_raises_keyboard_interrupt_inside_the_block_only() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        _terminate_me()
    assert signal.getsignal(signal.SIGTERM) == before


def test_the_cli_puts_the_previous_sigterm_handler_back(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[int] = []

    def mine(signum: int, frame: object) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        assert main(["docs"]) == exit_codes.OK
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
    capsys.readouterr()


def _interrupt_me() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)


def _interrupted_then_saved(first: Callable[[], None], finished: list[str]) -> None:
    """The first signal, then what the trainer's interrupt path does (write the checkpoint, name it)
    while a second Ctrl-C and a SIGTERM arrive."""
    try:
        first()
    finally:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # a handler would run here, at the next bytecode
        finished.append("saved")


@pytest.mark.parametrize("first", [_interrupt_me, _terminate_me])
def test_after_the_first_interrupt_a_second_is_ignored_until_the_block_ends(first: Callable[[], None]) -> None:
    """A second Ctrl-C (or SIGTERM) while the interrupted run writes its checkpoint and its line: ignored,
    so the save completes and the line is true; the handlers are back when the block ends."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    finished: list[str] = []
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        _interrupted_then_saved(first, finished)
    assert finished == ["saved"]
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_signal_the_process_ignores_stays_ignored() -> None:
    """A shell starts `cmd &` with SIGINT ignored: Ctrl-C in that shell must not stop the background run."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with terminate_as_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # not interrupted
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# -- forcing a stop while the checkpoint is written (docs/reliability.md) -----------------------------

# The audit in a child process, sent SIGINT after step 25 (scheduled checkpoints every 10 steps), whose
# interrupt checkpoint hangs in its fsync (a stalled file system), MARKER written when it does. SIGINT
# and SIGQUIT are given their usual handling first, whatever the test runner was started with.
HANGING_SAVE = """
import os
import resource
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import training.checkpoint as checkpoint
from ddcl_incrt.audit import run as audit_run
from ddcl_incrt.cli import main

signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGQUIT's core dump: none
marker = Path(sys.argv[1])
real_write, real_bar, real_fsync = checkpoint.write_atomic, audit_run.progress_bar, os.fsync


def hang(fd):
    marker.write_text("writing", encoding="utf-8")
    while True:
        time.sleep(1)


def write_atomic(path, data):
    if Path(path).name == "step-00000025.ckpt.npz":
        os.fsync = hang
    return real_write(path, data)


@contextmanager
def ctrl_c_at_25(*args, **kwargs):
    with real_bar(*args, **kwargs) as update:

        def update_then_stop(info):
            update(info)
            if info.step == 25:  # a real Ctrl-C: its handler is what ignores the next ones
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(5)

        yield update_then_stop


checkpoint.write_atomic = write_atomic
audit_run.progress_bar = ctrl_c_at_25
sys.exit(main(sys.argv[2:]))
"""


def _hung_in_the_interrupt_save(tmp_path: Path, out: Path) -> subprocess.Popen[str]:
    proc = _audit_child(
        HANGING_SAVE,
        tmp_path / "writing",
        out,
        steps=40,
        checkpoint_every=10,
        waiting_for="the interrupt checkpoint",
        within_s=120,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    try:
        proc.send_signal(signal.SIGINT)  # a second Ctrl-C: ignored while the checkpoint is written
        time.sleep(0.5)
        assert proc.poll() is None, "a second Ctrl-C stopped the save"
    except BaseException:
        proc.kill()
        proc.communicate()
        raise
    return proc


@pytest.mark.parametrize("force", [signal.SIGQUIT, signal.SIGKILL], ids=["ctrl-backslash", "kill -9"])
def test_a_forced_stop_mid_save_keeps_the_earlier_checkpoints_and_no_partial_file(
    tmp_path: Path, force: signal.Signals, capsys: pytest.CaptureFixture[str]
) -> None:
    """What docs/reliability.md says a user finds after Ctrl-\\ or kill -9 during the interrupt's
    checkpoint: the process gone at once, the earlier checkpoints intact, nothing under the name of the
    one being written (only a hidden temporary file), and --resume with the folder going on from the
    newest written one."""
    out = tmp_path / "audit"
    proc = _hung_in_the_interrupt_save(tmp_path, out)
    try:
        proc.send_signal(force)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -force, err
    folder = out / "checkpoints"
    assert [p.name for p in folder.glob("step-*.ckpt.npz")] == ["step-00000010.ckpt.npz", "step-00000020.ckpt.npz"]
    assert [Checkpoint.load(folder / f"step-000000{s}.ckpt.npz").step for s in (10, 20)] == [10, 20]
    (leftover,) = folder.glob(".step-00000025.ckpt.npz.*.tmp")
    assert main([*AUDIT, "--steps", "40", "--out", str(out), "--resume", str(folder)]) in (
        exit_codes.OK,
        exit_codes.FAILED_CHECK,
    )
    assert "resuming from step 20" in capsys.readouterr().out
    assert leftover.exists()  # never read, never deleted by the run: the user's to remove


def test_the_reliability_doc_says_how_to_force_a_stop_and_what_is_left() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "reliability.md").read_text(encoding="utf-8")
    paragraph = " ".join(text[text.index("Ctrl-C and SIGTERM (what") :].split("\n\n")[0].split())
    for said in (
        "Ctrl-\\ (SIGQUIT) or `kill -9` ends the process at once",
        "every earlier checkpoint is intact",
        "`.step-<step>.ckpt.npz.<random>.tmp`",
        "A signal the process was started with ignored stays ignored",
    ):
        assert said in paragraph, said
