"""docs/spec.md is the product's own specification: every citation of it in the repository names one of
its sections, its claims list is exactly the claim registry, and no tracked file points to a
specification kept outside the repository. Each detector is also run on a planted case, so that it can
be seen to fail."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from reference.claims.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
SPEC_DOC = ROOT / "docs" / "spec.md"

CITATION = re.compile(r"SPEC §(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,3} §(\d+(?:\.\d+)*)\b", re.MULTILINE)
CLAIM_ID = re.compile(r"^- \*\*([DGR]\d) ", re.MULTILINE)
# A reference to a specification outside the repository. Written with escapes so that this file does
# not match its own pattern.
OUTSIDE_SPEC = re.compile(r"\.\./shared|shared/SPEC\.md")


@cache
def tracked_text_files() -> Mapping[str, str]:
    """Every file ``git ls-files`` lists, by path, with its working-tree text; binary files (a NUL byte,
    or not UTF-8) and files deleted from the working tree are left out."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    files: dict[str, str] = {}
    for name in listed.decode("utf-8").split("\0"):
        if not name:
            continue
        try:
            data = (ROOT / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            continue
        if b"\0" in data:
            continue
        try:
            files[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return files


def spec_sections(text: str) -> set[str]:
    """The section numbers of the headings ``## §N …`` and ``### §N.M …`` of a specification text."""
    return set(HEADING.findall(text))


def unresolved_citations(files: Mapping[str, str], sections: set[str]) -> list[str]:
    """``path:line: citation`` for every citation ``SPEC §N[.M…]`` in ``files`` whose number is not one of
    ``sections``."""
    return [
        f"{path}:{lineno}: {match.group(0)}"
        for path, text in files.items()
        for lineno, line in enumerate(text.splitlines(), start=1)
        for match in CITATION.finditer(line)
        if match.group(1) not in sections
    ]


def outside_spec_references(files: Mapping[str, str]) -> list[str]:
    """``path:line: text`` for every line of ``files`` that refers to a specification outside the
    repository."""
    return [
        f"{path}:{lineno}: {line.strip()}"
        for path, text in files.items()
        for lineno, line in enumerate(text.splitlines(), start=1)
        if OUTSIDE_SPEC.search(line)
    ]


def test_spec_has_every_numbered_section_once() -> None:
    numbers = HEADING.findall(SPEC_DOC.read_text(encoding="utf-8"))
    assert len(numbers) == len(set(numbers)), f"a section number is used twice: {numbers}"
    expected = {str(i) for i in range(7)} | {f"3.{i}" for i in range(1, 6)}
    assert expected <= set(numbers), f"sections missing from docs/spec.md: {sorted(expected - set(numbers))}"


def test_every_citation_of_the_spec_names_one_of_its_sections() -> None:
    files = tracked_text_files()
    assert "README.md" in files, "git ls-files did not list the README"
    assert "reference/claims/registry.py" in files, "git ls-files did not list the sources"
    sections = spec_sections(SPEC_DOC.read_text(encoding="utf-8"))
    unresolved = unresolved_citations(files, sections)
    assert not unresolved, "citations of sections docs/spec.md does not have:\n" + "\n".join(unresolved)


def test_an_unknown_citation_is_reported() -> None:
    sections = spec_sections(SPEC_DOC.read_text(encoding="utf-8"))
    planted = "SPEC " + "§9.9"  # built from pieces, so that the scan of this file does not see it
    files = {"planted.py": f'"""The rule of SPEC §3.2."""\n# as {planted} says, and SPEC §1\n'}
    assert unresolved_citations(files, sections) == [f"planted.py:2: {planted}"]


def test_the_claims_of_the_spec_are_the_registry() -> None:
    ids = CLAIM_ID.findall(SPEC_DOC.read_text(encoding="utf-8"))
    assert ids, "no claim ids parsed from docs/spec.md"
    assert len(ids) == len(set(ids)), f"a claim is listed twice in docs/spec.md: {ids}"
    assert set(ids) == set(REGISTRY)


def test_no_tracked_file_refers_to_a_spec_outside_the_repository() -> None:
    found = outside_spec_references(tracked_text_files())
    assert not found, "references to a specification outside the repository:\n" + "\n".join(found)


def test_a_reference_to_a_spec_outside_the_repository_is_reported() -> None:
    outside = ".." + "/shared/" + "SPEC.md"  # built from pieces, so that the scan of this file does not see it
    files = {"README.md": f"The mathematics is in `{outside}`.\nSee docs/spec.md.\n", "ok.md": "shared cores\n"}
    assert outside_spec_references(files) == [f"README.md:1: The mathematics is in `{outside}`."]
    copied = "# copied from " + "shared/" + "SPEC.md"
    assert outside_spec_references({"t.py": copied}) == [f"t.py:1: {copied}"]
