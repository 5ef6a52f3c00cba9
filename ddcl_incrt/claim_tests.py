"""The ``claim`` pytest marker: tests say which claim they check, and the registry checks that every
implemented claim is tested (as PyTorch's OpInfo database drives its tests).

    @pytest.mark.claim("G5", "property")   # the invariant holds on generated inputs
    @pytest.mark.claim("G5", "planted")    # the invariant fires on a planted violation
    @pytest.mark.claim("G5", "falsifier")  # a hypothesis dropped: the conclusion fails

A test may carry several ``claim`` markers. :func:`claim_tests` collects them from pytest items (the
project's ``tests/conftest.py`` calls it at collection and rejects an unknown claim id or kind);
:func:`missing_claim_tests` lists every implemented claim that lacks a test of some kind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from reference.claims.records import Claim

MARKER = "claim"
KINDS: tuple[str, ...] = ("property", "planted", "falsifier")
REQUIRED_KINDS: tuple[str, ...] = ("property", "planted")  # every implemented claim needs one of each
MARKER_HELP = (
    "claim(id, kind): the test checks claim `id` of the registry; kind 'property' (the invariant holds on "
    "generated inputs), 'planted' (the invariant fires on a planted violation) or 'falsifier' (with a "
    "hypothesis dropped the conclusion fails)"
)

ClaimTests = dict[str, dict[str, list[str]]]  # claim id -> kind -> test node ids
# With this variable set, the suite's conftest writes the collected map there as JSON.
OUT_ENV = "DDCL_CLAIM_TESTS_OUT"


class _Mark(Protocol):
    args: tuple[object, ...]


class _Item(Protocol):
    nodeid: str

    def iter_markers(self, name: str) -> Iterable[_Mark]: ...


def claim_tests(items: Iterable[_Item], known: Iterable[str]) -> ClaimTests:
    """``{claim id: {kind: [node id, ...]}}`` from the ``claim`` markers of ``items``.

    Raises ``ValueError`` naming the test when a marker has an id not in ``known`` or an unknown kind.
    """
    ids = set(known)
    found: ClaimTests = {}
    for item in items:
        for mark in item.iter_markers(MARKER):
            if len(mark.args) != 2:
                raise ValueError(f"{item.nodeid}: expected @pytest.mark.claim(id, kind), got args {mark.args!r}")
            claim_id, kind = mark.args
            if claim_id not in ids:
                raise ValueError(f"{item.nodeid}: claim marker names {claim_id!r}, not a claim of the registry")
            if kind not in KINDS:
                raise ValueError(f"{item.nodeid}: claim marker kind {kind!r}, expected one of {KINDS}")
            found.setdefault(str(claim_id), {}).setdefault(str(kind), []).append(item.nodeid)
    return found


def collect_claim_tests(tests_dir: Path) -> ClaimTests:
    """The ``claim`` markers of every test under ``tests_dir``, from a ``pytest --collect-only`` run in a
    subprocess (the suite's conftest writes the map to the file named by :data:`OUT_ENV`)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "claim_tests.json"
        env = {**os.environ, OUT_ENV: str(out)}
        cmd = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", str(tests_dir)]
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=tests_dir.parent)
        found: ClaimTests = json.loads(out.read_text(encoding="utf-8"))
    return found


def missing_claim_tests(claims: Iterable[Claim], found: Mapping[str, Mapping[str, list[str]]]) -> list[str]:
    """``"G5: no planted test"``-style lines, one per implemented claim and kind without a marked test."""
    out: list[str] = []
    for claim in claims:
        if not claim.implemented:
            continue
        for kind in REQUIRED_KINDS:
            if not found.get(claim.id, {}).get(kind):
                out.append(f"{claim.id}: no {kind} test (mark one with @pytest.mark.claim({claim.id!r}, {kind!r}))")
    return out


__all__ = [
    "KINDS",
    "MARKER",
    "MARKER_HELP",
    "OUT_ENV",
    "REQUIRED_KINDS",
    "ClaimTests",
    "claim_tests",
    "collect_claim_tests",
    "missing_claim_tests",
]
