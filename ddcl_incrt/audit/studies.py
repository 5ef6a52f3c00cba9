"""The studies' results in the audit report (``ddcl-incrt audit --studies DIR``).

A study (``ddcl_incrt.studies``: the cluster study, the planted head-count study, the two-time-scales
sweep) runs for minutes and writes its own folder: a Markdown table and a figure, beside its JSON of
every seed. The audit does not rerun them; given ``--studies DIR`` it reads every subfolder of
``DIR`` that holds a ``.md`` table (the one named like its ``.png`` figure when there are several)
and adds each as a section of the report, labelled ``measured``, in folder-name order.
``docs/runs.md`` has the commands that write them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class StudySection:
    """One study's results: its folder name, the title (the Markdown's first heading), the Markdown
    text without that heading, and the figure's PNG bytes (``None`` if it wrote none)."""

    name: str
    title: str
    markdown: str
    png: bytes | None = field(default=None, repr=False)


_HEADING = re.compile(r"^#+\s+(.*)$")


def load_study_sections(directory: Path) -> tuple[StudySection, ...]:
    """Every study folder under ``directory`` (see the module doc); errors name ``--studies``."""
    root = Path(directory)
    if not root.is_dir():
        raise ValueError(f"--studies: {root} is not a folder (give the folder the studies wrote into)")
    sections = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        mds, pngs = sorted(folder.glob("*.md")), sorted(folder.glob("*.png"))
        if not mds:
            continue
        table = [m for m in mds if pngs and m.stem == pngs[0].stem] if len(mds) > 1 else mds
        if len(table) != 1 or len(pngs) > 1:
            raise ValueError(
                f"--studies: {folder} holds {len(mds)} .md and {len(pngs)} .png files; a study folder holds one "
                "figure and one table (with the figure's name when there are several)"
            )
        mds = table
        text = mds[0].read_text(encoding="utf-8")
        lines = text.splitlines()
        first = next((i for i, line in enumerate(lines) if line.strip()), None)
        match = _HEADING.match(lines[first]) if first is not None else None
        title = match.group(1).strip() if match else folder.name
        body = "\n".join(lines[first + 1 :] if match and first is not None else lines)
        sections.append(StudySection(folder.name, title, body, pngs[0].read_bytes() if pngs else None))
    if not sections:
        raise ValueError(f"--studies: no study folder (a subfolder with a .md table) under {root}")
    return tuple(sections)


__all__ = ["StudySection", "load_study_sections"]
