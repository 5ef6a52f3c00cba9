"""Output options are tried, not only asked about: a folder the permissions call writable that refuses
new entries (root on /proc or /sys, a read-only or full file system) is found before any work, and the
check leaves nothing behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import ddcl_incrt.audit.run as audit_run
from ddcl_incrt.cli import main
from ddcl_incrt.output_paths import OutputPathError, check_output_dir, check_output_file


def _refusing_creation(monkeypatch: pytest.MonkeyPatch, folder: Path) -> list[str]:
    """``mkstemp`` inside ``folder`` fails as /proc refuses it (os.access still says writable)."""
    import ddcl_incrt.output_paths as output_paths

    tried: list[str] = []
    real = output_paths.tempfile.mkstemp

    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        where = str(kwargs.get("dir"))
        tried.append(where)
        if Path(where).resolve().is_relative_to(folder.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), where)
        return real(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(output_paths.tempfile, "mkstemp", mkstemp)
    return tried


@pytest.mark.parametrize("existing", [True, False])
def test_a_folder_that_refuses_new_files_is_refused_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    out = tmp_path / "read-only" / ("" if existing else "new/deeper")
    (tmp_path / "read-only").mkdir()
    tried = _refusing_creation(monkeypatch, tmp_path / "read-only")
    with pytest.raises(
        OutputPathError, match=r"^--out .*: cannot be written: creating .* failed \(Read-only file system\)$"
    ):
        check_output_dir(out, "--out")
    assert tried, "the check must try a write"
    assert sorted(p.name for p in (tmp_path / "read-only").iterdir()) == []  # the folders it made are removed


def test_an_output_file_in_a_folder_that_refuses_new_files_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _refusing_creation(monkeypatch, tmp_path)
    with pytest.raises(OutputPathError, match=r"^--json .*report.json: cannot be written"):
        check_output_file(tmp_path / "report.json", "--json")


def test_a_writable_folder_passes_and_keeps_only_what_was_there(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("the user's file", encoding="utf-8")
    assert check_output_dir(tmp_path, "--out") == tmp_path
    assert check_output_dir(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert check_output_file(tmp_path / "c" / "report.json", "--json") == tmp_path / "c" / "report.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/proc/self").is_dir(), reason="root on Linux: /proc refuses")
def test_root_is_refused_an_output_folder_in_proc_before_training(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The outside tester's case: as root, os.access calls /proc writable; the audit trained, then failed."""

    def no_training(*_: object) -> None:
        raise AssertionError("trained before checking --out")

    monkeypatch.setattr(audit_run, "run_training", no_training)
    argv = ["audit", "--quick", "--dataset", "planted", "--steps", "20", "--engine", "reference"]
    assert main([*argv, "--out", "/proc/ddcl-incrt-audit"]) == 2
    assert "--out /proc/ddcl-incrt-audit: cannot be written" in capsys.readouterr().err
