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


def test_a_name_the_file_system_cannot_take_is_refused_before_any_work(tmp_path: Path) -> None:
    """A missing folder is not created by the check (parallel runs would race), so a name too long for
    the file system is caught by its length: a 260-byte folder name trained a whole run before."""
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    with pytest.raises(OutputPathError, match=f"longer than the {name_max} bytes"):
        check_output_dir(tmp_path / "new" / ("b" * (name_max + 1)), "--out")
    assert not (tmp_path / "new").exists()
    check_output_dir(tmp_path / "new" / ("b" * name_max), "--out")  # just at the limit: taken
    path_max = os.pathconf(tmp_path, "PC_PATH_MAX")
    deep = tmp_path.joinpath(*["c" * 200] * (path_max // 200 + 1))
    with pytest.raises(OutputPathError, match=f"longer than the system's {path_max} bytes"):
        check_output_dir(deep, "--out")
    for where in (tmp_path, tmp_path / "new"):  # an output file's own name, in an existing or a new folder
        with pytest.raises(OutputPathError, match=f"longer than the {name_max} bytes"):
            check_output_file(where / ("r" * (name_max + 1)), "--out")
        check_output_file(where / ("r" * name_max), "--out")


def test_the_check_creates_no_missing_folder_only_a_probe_in_the_nearest_existing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs started at once into sibling folders of a new parent raced when the check made the parent and
    removed it again: the probe file goes into the nearest existing folder, and nothing else is made."""
    import tempfile

    seen: list[str] = []
    real = tempfile.mkstemp

    def probe(*args: object, **kwargs: object) -> tuple[int, str]:
        seen.append(str(kwargs["dir"]))
        assert not (tmp_path / "parent").exists(), "a missing folder was created"
        return real(*args, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(tempfile, "mkstemp", probe)
    check_output_dir(tmp_path / "parent" / "run-1", "--out")
    assert seen == [str(tmp_path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == []
