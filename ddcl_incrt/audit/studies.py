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

A study folder's JSON (its ``protocol`` document and the scale it ran at, e.g. ``results.json``) is read
too, leniently (an unreadable or malformed one is ignored): a section without a ``Protocol:`` line
gets one from it, a table without a heading gets the study's title from its protocol, and a run smaller
than the protocol's (``--quick``: fewer steps, seeds or ratios) is marked as one in the section.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.files import read_regular_file


@dataclass(frozen=True)
class StudySection:
    """One study's results: its folder name, the title (the Markdown's first heading, else the title of
    its protocol), the Markdown text without that heading, and the figure's PNG bytes (``None`` if it
    wrote none); ``protocol`` is the protocol document its JSON names (``None`` without one) and
    ``scale_note`` says how the run is smaller than the protocol's (empty when it is not, or unknown)."""

    name: str
    title: str
    markdown: str
    png: bytes | None = field(default=None, repr=False)
    protocol: str | None = None
    scale_note: str = ""


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


# The title of each study's protocol document (docs/studies/), for a table that has no heading of its own.
PROTOCOL_TITLES: dict[str, str] = {
    "docs/studies/cluster.md": "DDCL block as a clustering method (measured)",
    "docs/studies/planted-heads.md": "Planted head counts: does the growth rule find m heads? (measured)",
    "docs/studies/time-scales.md": "Two time scales (R3): stability against η_enc/η_P (measured)",
}


def _study_json(folder: Path) -> Mapping[str, Any] | None:
    """The first JSON document of the folder that names its ``protocol`` (``None`` if none can be read:
    the JSON only adds notes, so an unreadable or malformed one is passed over)."""
    try:
        candidates = sorted(folder.glob("*.json"))
    except OSError:
        return None
    for path in candidates:
        try:
            data = json.loads(_read(path, "results").decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if isinstance(data, dict) and isinstance(data.get("protocol"), str):
            return data
    return None


def _count(value: object) -> int | None:
    return len(value) if isinstance(value, list) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Scale:
    """How a study's run compares with its protocol's: ``smaller`` lists ``(what, this run's, the
    protocol's)`` for every dimension in which it was smaller (steps per run, seeds, ratios of the
    grid); ``quick`` is whether it is what the study's ``--quick`` writes."""

    smaller: tuple[tuple[str, int, int], ...]
    quick: bool


def study_scale(data: Mapping[str, Any]) -> Scale:
    """The :class:`Scale` of a study's run from its JSON; nothing smaller for a study this does not know,
    or a run at the protocol's scale."""
    protocol = data.get("protocol")
    found: list[tuple[str, int | None, int]] = []
    quick: tuple[int | None, ...] = ()
    if protocol == "docs/studies/cluster.md":
        from ddcl_incrt.studies import cluster

        params = data.get("parameters")
        steps = _int(params.get("steps")) if isinstance(params, dict) else None
        found = [
            ("steps per run", steps, cluster.Protocol().steps),
            ("seeds", _count(data.get("seeds")), cluster.SEEDS),
        ]
        quick = (cluster.QUICK_STEPS, cluster.QUICK_SEEDS)
    elif protocol == "docs/studies/planted-heads.md":
        from ddcl_incrt.studies import planted_heads as ph

        found = [("steps per run", _int(data.get("steps")), ph.STEPS), ("seeds", _count(data.get("seeds")), ph.SEEDS)]
        quick = (ph.QUICK_STEPS, ph.QUICK_SEEDS)
    elif protocol == "docs/studies/time-scales.md":
        from ddcl_incrt.studies import time_scales as ts

        config = data.get("config")
        if isinstance(config, dict):
            arms = config.get("arms")
            seeds = sum(len(v) for v in arms.values() if isinstance(v, list)) if isinstance(arms, dict) else None
            found = [
                ("steps per run", _int(config.get("steps")), ts.STEPS),
                ("ratios", _count(config.get("ratios")), len(ts.RATIOS)),
                ("seeds per ratio over the arms", seeds, sum(len(a.seeds) for a in ts.SweepConfig().arms)),
            ]
            quick = (ts.QUICK_STEPS, len(ts.QUICK_RATIOS), 2)  # 2 ratios x 1 seed per arm x 100 steps
    meta = data.get("meta")
    argv = meta.get("argv") if isinstance(meta, dict) else None
    said = isinstance(argv, list) and "--quick" in argv
    smaller = tuple((what, ours, theirs) for what, ours, theirs in found if ours is not None and ours < theirs)
    return Scale(smaller, said or (bool(quick) and tuple(ours for _, ours, _ in found) == quick))


def _one(name: str) -> str:
    """A count's name for one of it: its first word without the plural s ("steps per run": "step per run")."""
    first, space, rest = name.partition(" ")
    return first.removesuffix("s") + space + rest


def scale_note(data: Mapping[str, Any]) -> str:
    """A sentence marking a study's run as smaller than its protocol's (:func:`study_scale`), or ``""``."""
    scale = study_scale(data)
    if not scale.smaller:
        return ""
    what = ", ".join(
        f"{ours} {_one(name) if ours == 1 else name} (protocol: {theirs})" for name, ours, theirs in scale.smaller
    )
    kind = "a --quick smoke run" if scale.quick else "a smaller run than the protocol prescribes"
    return (
        f"Not the protocol's run: {kind}, {what}. Its numbers show the study running, not what the study "
        f"finds; the protocol's results are in `{data['protocol']}`."
    )


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
        data = _study_json(folder)
        protocol = str(data["protocol"]) if data is not None else None
        title = (
            match.group(1).strip()
            if match
            else PROTOCOL_TITLES.get(protocol or "", folder.name.replace("_", " ").capitalize())
        )
        body = "\n".join(lines[first + 1 :] if match and first is not None else lines)
        sections.append(
            StudySection(
                folder.name,
                title,
                body,
                _figure_bytes(pngs[0]) if pngs else None,
                protocol=protocol,
                scale_note=scale_note(data) if data is not None else "",
            )
        )
    if not sections:
        raise ValueError(f"--studies: no study folder (a subfolder with a .md table) under {root}")
    return tuple(sections)


__all__ = [
    "PNG_SIGNATURE",
    "PROTOCOL_TITLES",
    "Scale",
    "StudySection",
    "load_study_sections",
    "scale_note",
    "study_scale",
]
