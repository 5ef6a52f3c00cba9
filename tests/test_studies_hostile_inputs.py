"""``audit --studies DIR`` given hostile study folders: a FIFO, a table that is not UTF-8, a figure that
is not a PNG, an unreadable file. Each is refused at once with one line naming ``--studies`` and the
file (exit code 2 from the command), and nothing that is not a PNG reaches the report. Also the
empty path given to an output option such as ``audit --out ''``, refused naming the option."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from pathlib import Path

import pytest

from ddcl_incrt.arguments import path_argument
from ddcl_incrt.audit.studies import PNG_SIGNATURE, load_study_sections
from ddcl_incrt.cli import main
from ddcl_incrt.output_paths import OutputPathError, check_output_dir, check_output_file

# A minimal valid PNG header is enough for the loader: it checks the signature, not the whole image.
_PNG = PNG_SIGNATURE + b"\x00\x00\x00\rIHDR" + bytes(17)


def _study(root: Path, name: str = "a") -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    return folder


def _load_with_deadline(root: Path, seconds: float = 30.0) -> BaseException | None:
    """:func:`load_study_sections` in a thread: the error it raised (None if none); fails the test
    if it has not returned after ``seconds`` (a loader waiting on a FIFO)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            load_study_sections(root)
            outcome.append(None)
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        for fifo in root.rglob("*"):  # let a reader blocked in open() go: give its FIFO a writer
            if fifo.is_fifo():
                with contextlib.suppress(OSError):
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5.0)
        pytest.fail(f"load_study_sections({root}) was still waiting after {seconds} s (a FIFO read as a file?)")
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_a_table_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(_study(tmp_path) / "t.md")
    err = _load_with_deadline(tmp_path)
    assert isinstance(err, ValueError)
    message = str(err)
    assert message.startswith("--studies:")
    assert "t.md" in message
    assert "FIFO" in message
    assert "\n" not in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_a_figure_is_refused_at_once(tmp_path: Path) -> None:
    folder = _study(tmp_path)
    (folder / "t.md").write_text("# T\n", "utf-8")
    os.mkfifo(folder / "t.png")
    err = _load_with_deadline(tmp_path)
    assert isinstance(err, ValueError)
    assert str(err).startswith("--studies:")
    assert "t.png" in str(err)
    assert "FIFO" in str(err)


def test_a_table_that_is_not_utf8_names_studies_and_the_file(tmp_path: Path) -> None:
    (_study(tmp_path) / "t.md").write_bytes(b"\xff\xfe garbage")
    with pytest.raises(ValueError, match=r"^--studies: .*t\.md.*not UTF-8") as info:
        load_study_sections(tmp_path)
    assert "\n" not in str(info.value)


def test_a_figure_without_the_png_signature_is_refused(tmp_path: Path) -> None:
    folder = _study(tmp_path)
    (folder / "t.md").write_text("# T\n", "utf-8")
    (folder / "t.png").write_bytes(bytes(range(256)) + b"random bytes, not an image")
    with pytest.raises(ValueError, match=r"^--studies: .*t\.png.*not a PNG") as info:
        load_study_sections(tmp_path)
    assert "\n" not in str(info.value)


def test_a_folder_named_like_a_table_is_refused(tmp_path: Path) -> None:
    (_study(tmp_path) / "t.md").mkdir()
    with pytest.raises(ValueError, match=r"^--studies: .*t\.md.*not a regular file \(a folder\)"):
        load_study_sections(tmp_path)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_table_names_studies_and_the_file(tmp_path: Path) -> None:
    table = _study(tmp_path) / "t.md"
    table.write_text("# T\n", "utf-8")
    table.chmod(0)
    try:
        with pytest.raises(ValueError, match=r"^--studies: .*t\.md"):
            load_study_sections(tmp_path)
    finally:
        table.chmod(0o644)


def test_a_valid_study_still_loads(tmp_path: Path) -> None:
    folder = _study(tmp_path, "toy")
    (folder / "toy.md").write_text("# A toy study\n\n| arm | value |\n|---|---|\n| a | 0.25 |\n", "utf-8")
    (folder / "toy.png").write_bytes(_PNG)
    (section,) = load_study_sections(tmp_path)
    assert section.name == "toy"
    assert section.title == "A toy study"
    assert "| a | 0.25 |" in section.markdown
    assert section.png == _PNG


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"t.md": b"\xff\xfe garbage"}, "not UTF-8"),
        ({"t.md": b"# T\n", "t.png": b"\x00" * 300}, "not a PNG"),
    ],
)
def test_the_command_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], files: dict[str, bytes], needle: str
) -> None:
    """The studies are read before training: the command stops at once, writes nothing, exits 2."""
    folder = _study(tmp_path / "studies")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    out = tmp_path / "out"
    argv = ["audit", "--quick", "--steps", "1", "--engine", "reference", "--out", str(out)]
    assert main([*argv, "--studies", str(tmp_path / "studies")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "--studies" in err
    assert needle in err
    assert str(folder) in err
    assert not out.exists()


# The shared type of the path options (ddcl_incrt.arguments.path_argument): ``type=Path`` turns an
# empty ``--out ''`` into ``.`` before any check can see it, so the report went into the current folder.


def test_the_path_option_type_refuses_an_empty_path_naming_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser(prog="ddcl-incrt audit")
    parser.add_argument("--out", type=path_argument, default=Path("audit"))
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--out", ""])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--out" in err
    assert "non-empty path" in err
    with pytest.raises(SystemExit):
        parser.parse_args(["--out", "a\0b"])
    assert "NUL" in capsys.readouterr().err
    assert parser.parse_args(["--out", "."]).out == Path(".")
    assert parser.parse_args(["--out", "x/y"]).out == Path("x/y")
    assert parser.parse_args([]).out == Path("audit")


def test_the_output_checks_refuse_an_empty_path_naming_the_option() -> None:
    with pytest.raises(OutputPathError, match=r"^--out '': expected a non-empty path"):
        check_output_dir("", "--out")
    with pytest.raises(OutputPathError, match=r"^--json '': expected a non-empty path"):
        check_output_file("", "--json")
