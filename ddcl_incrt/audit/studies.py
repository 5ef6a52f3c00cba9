"""The studies' results in the audit report (``ddcl-incrt audit --studies DIR``).

A study (``ddcl_incrt.studies``: the cluster study, the planted head-count study, the two-time-scales
sweep) runs for minutes and writes its own folder: a Markdown table and a figure, beside its JSON of
every seed. The audit does not rerun them; given ``--studies DIR`` it reads every subfolder of
``DIR`` that holds a ``.md`` table (the one named like its ``.png`` figure when there are several)
and adds each as a section of the report, labelled ``measured``, in folder-name order.
``docs/runs.md`` has the commands that write them.

The folder is a stranger's: every file is read by :func:`training.files.read_regular_file` (a FIFO
or a device named ``*.md`` is refused at once, never waited on), the table must be UTF-8 and the
figure must start with the PNG signature before its bytes are copied into the report; each refusal
is one line naming ``--studies`` and the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from training.files import read_regular_file


@dataclass(frozen=True)
class StudySection:
    """One study's results: its folder name, the title (the Markdown's first heading), the Markdown
    text without that heading, and the figure's PNG bytes (``None`` if it wrote none)."""

    name: str
    title: str
    markdown: str
    png: bytes | None = field(default=None, repr=False)


_HEADING = re.compile(r"^#+\s+(.*)$")

# The first eight bytes of every PNG file (the PNG specification, section 5.2).
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read(path: Path, what: str) -> bytes:
    """The bytes of the study's ``what`` at ``path``; any failure a one-line ``ValueError`` naming
    ``--studies`` and the file."""
    try:
        return read_regular_file(path)
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ValueError(f"--studies: cannot read the {what} {str(path)!r}: {reason}") from exc


def _table_text(path: Path) -> str:
    data = _read(path, "table")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"--studies: the table {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from exc


def _figure_bytes(path: Path) -> bytes:
    data = _read(path, "figure")
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError(
            f"--studies: the figure {str(path)!r} is not a PNG image (it does not start with the PNG signature)"
        )
    return data


def load_study_sections(directory: Path) -> tuple[StudySection, ...]:
    """Every study folder under ``directory`` (see the module doc); errors name ``--studies``."""
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"--studies: {root} is not a folder (give the folder the studies wrote into)")
    sections = []
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError as exc:
        raise ValueError(f"--studies: cannot list the folder {str(root)!r}: {exc.strerror or exc}") from exc
    for folder in folders:
        try:
            mds, pngs = sorted(folder.glob("*.md")), sorted(folder.glob("*.png"))
        except OSError as exc:
            raise ValueError(f"--studies: cannot list the folder {str(folder)!r}: {exc.strerror or exc}") from exc
        if not mds:
            continue
        table = [m for m in mds if pngs and m.stem == pngs[0].stem] if len(mds) > 1 else mds
        if len(table) != 1 or len(pngs) > 1:
            raise ValueError(
                f"--studies: {folder} holds {len(mds)} .md and {len(pngs)} .png files; a study folder holds one "
                "figure and one table (with the figure's name when there are several)"
            )
        mds = table
        text = _table_text(mds[0])
        lines = text.splitlines()
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        match = _HEADING.match(lines[first]) if first is not None else None
        title = match.group(1).strip() if match else folder.name
        body = "\n".join(lines[first + 1 :] if match and first is not None else lines)
        sections.append(StudySection(folder.name, title, body, _figure_bytes(pngs[0]) if pngs else None))
    if not sections:
        raise ValueError(f"--studies: no study folder (a subfolder with a .md table) under {root}")
    return tuple(sections)


__all__ = ["PNG_SIGNATURE", "StudySection", "load_study_sections"]
