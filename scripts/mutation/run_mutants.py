"""Mutation-testing harness: apply hand-curated mutants of ``reference/``, ``proofs_check/``,
``training/``, ``accelerated/`` and ``ddcl_incrt/`` one at a time and check that the test suite (and ``ddcl-incrt
prove``) catches each.

Run on purpose, not in CI (docs/mutation.md)::

    .venv/bin/python scripts/mutation/run_mutants.py              # every mutant, one at a time
    .venv/bin/python scripts/mutation/run_mutants.py --list       # the mutant list, nothing run
    .venv/bin/python scripts/mutation/run_mutants.py --only tol-gamma-off-by-one d3-descent-halved
    .venv/bin/python scripts/mutation/run_mutants.py --file reference/optim.py --jobs 2

Each mutant in ``scripts/mutation/mutants.toml`` names a file, an exact snippet ``find`` that must
occur exactly once in it (a stale mutant is an error, never silently skipped) and its ``replace``.
The working tree (tracked and untracked, not ignored, files) is snapshotted once at start; each
mutant is applied to its own copy of that snapshot in a temporary directory, so the checkout itself
is never modified, edits made during a run do not leak into it, and ``--jobs`` can run several at
once. In the copy we run pytest (``-x -q -p no:cacheprovider``, hypothesis profile
``ci``) on the mutant's ``tests`` (or the whole suite), then ``ddcl-incrt prove`` when the mutated
file is under ``proofs_check/`` or imported by it. A mutant is *caught* when a command fails; a
command that runs past ``--timeout`` counts as caught but is reported as ``timeout``.

The JSON report of a full run (the whole curated list, each mutant's own tests) replaces the tracked
``scripts/mutation/last_run.json``; a partial run (``--only``, ``--file``, ``--tests`` or another
``--mutants`` list) writes ``runs/mutation/last_partial_run.json`` (git-ignored) instead, so it never
deletes the full run's record. ``--out PATH`` writes either wherever it says.

Only the standard library is used; the commands run with the project's virtual environment.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_LIST = HERE / "mutants.toml"
DEFAULT_OUT = HERE / "last_run.json"  # the full run's record (tracked): only a full run replaces it
PARTIAL_OUT = ROOT / "runs" / "mutation" / "last_partial_run.json"  # runs/ is git-ignored
KINDS = frozenset(
    {
        "boundary",
        "looser-bound",
        "dropped-term",
        "sign",
        "off-by-one",
        "stabilisation",
        "statistic",
        "cross-check-deleted",
        "validation-removed",
        "wrong-constant",
        "wrong-operand",
    }
)
REQUIRED = ("id", "file", "find", "replace", "kind", "why")
OPTIONAL = ("equivalent", "tests")


class MutantListError(ValueError):
    """The mutant list is malformed or stale (a ``find`` snippet does not occur exactly once)."""


@dataclass(frozen=True)
class Mutant:
    id: str
    file: str
    find: str
    replace: str
    kind: str
    why: str
    equivalent: str | None = None
    tests: tuple[str, ...] = ()


@dataclass
class Outcome:
    id: str
    kind: str
    file: str
    status: str  # "caught", "survived", "timeout", "error"
    seconds: float
    first_failure: str = ""
    equivalent: str | None = None
    commands: list[str] = field(default_factory=list)

    @property
    def caught(self) -> bool:
        return self.status in ("caught", "timeout")


# --------------------------------------------------------------------------------------------------
# The mutant list
# --------------------------------------------------------------------------------------------------


def load_mutants(path: Path, root: Path = ROOT) -> list[Mutant]:
    """Parse and validate the list; raise :class:`MutantListError` on any problem, naming the mutant."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    entries = data.get("mutant")
    if not isinstance(entries, list) or not entries:
        raise MutantListError(f"{path}: expected a non-empty array of [[mutant]] tables")
    mutants: list[Mutant] = []
    seen: set[str] = set()
    for k, e in enumerate(entries):
        label = e.get("id", f"#{k}")
        # `replace` may be empty (a deleted line); every other required field is a non-empty string.
        missing = [key for key in REQUIRED if not isinstance(e.get(key), str) or (key != "replace" and not e[key])]
        if missing:
            raise MutantListError(f"mutant {label}: missing or empty string fields {missing}")
        unknown = sorted(set(e) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise MutantListError(f"mutant {label}: unknown fields {unknown}")
        if label in seen:
            raise MutantListError(f"mutant {label}: duplicate id")
        seen.add(label)
        if e["kind"] not in KINDS:
            raise MutantListError(f"mutant {label}: kind {e['kind']!r} not one of {sorted(KINDS)}")
        if e["find"] == e["replace"]:
            raise MutantListError(f"mutant {label}: replace equals find (not a mutant)")
        tests = e.get("tests", [])
        if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
            raise MutantListError(f"mutant {label}: tests must be a list of strings")
        for t in tests:
            if not (root / t.split("::")[0]).exists():
                raise MutantListError(f"mutant {label}: test path {t!r} does not exist")
        equivalent = e.get("equivalent")
        if equivalent is not None and (not isinstance(equivalent, str) or not equivalent.strip()):
            raise MutantListError(f"mutant {label}: equivalent must be a non-empty reason")
        target = root / e["file"]
        if not target.is_file():
            raise MutantListError(f"mutant {label}: file {e['file']!r} does not exist")
        count = target.read_text(encoding="utf-8").count(e["find"])
        if count != 1:
            raise MutantListError(
                f"mutant {label}: `find` occurs {count} times in {e['file']} (must be exactly once); "
                f"update the mutant to the current code:\n{e['find']}"
            )
        mutants.append(
            Mutant(
                id=label,
                file=e["file"],
                find=e["find"],
                replace=e["replace"],
                kind=e["kind"],
                why=e["why"],
                equivalent=equivalent,
                tests=tuple(tests),
            )
        )
    return mutants


# --------------------------------------------------------------------------------------------------
# Which files `ddcl-incrt prove` depends on (transitive imports of proofs_check, resolved statically)
# --------------------------------------------------------------------------------------------------


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def prove_dependencies(root: Path = ROOT) -> set[str]:
    """Repo-relative paths of every project module that ``proofs_check`` imports, transitively."""
    todo = sorted((root / "proofs_check").glob("*.py"))
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] not in ("reference", "proofs_check"):
                    continue
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a package's __init__ runs too
                    found = _module_file(root, ".".join(parts[:i]))
                    if found is not None and found not in seen:
                        todo.append(found)
    return {p.relative_to(root).as_posix() for p in seen}


# --------------------------------------------------------------------------------------------------
# Running one mutant in a private copy of the working tree
# --------------------------------------------------------------------------------------------------


def _tree_files(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout
    return [p for p in out.decode().split("\0") if p and (root / p).is_file()]


def _copy_tree(root: Path, files: Sequence[str], dest: Path) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)
_STEP_FAILED = re.compile(r"│\s*\S+\s*│\s*(\S+)\s*│.*?│\s*failed\s*│")


def _first_failure(kind: str, output: str) -> str:
    if kind == "pytest":
        m = _FAILED.search(output)
        if m:
            return m.group(1)
        tail = [line for line in output.strip().splitlines() if line.strip()]
        return f"pytest: {tail[-1][:100]}" if tail else "pytest failed"
    steps = [m.group(1) for m in _STEP_FAILED.finditer(output)]
    return "prove: step " + ", ".join(steps) if steps else "prove failed"


def _env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The copy shadows the editable install (a sys.path entry wins over setuptools' meta-path finder).
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["DDCL_HYPOTHESIS_PROFILE"] = "ci"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _commands(mutant: Mutant, python: str, tests_override: Sequence[str], prove: bool) -> list[tuple[str, list[str]]]:
    tests = list(tests_override) or list(mutant.tests) or ["tests"]
    cmds = [("pytest", [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests])]
    if prove:
        cmds.append(("prove", [python, "-m", "ddcl_incrt.cli", "prove"]))
    return cmds


# The packages a mutant may live in; each must be imported from the copy (``accelerated`` imports
# nothing from torch at package level, so the guard runs without it).
PACKAGES = ("reference", "proofs_check", "ddcl_incrt", "accelerated")


def check_copy_imports_itself(python: str, tree: Path) -> None:
    """Guard: in the copy, every package of :data:`PACKAGES` must be imported from the copy, not the
    editable install."""
    code = f"import {', '.join(PACKAGES)}; " + "; ".join(f"print({p}.__file__)" for p in PACKAGES)
    out = subprocess.run(
        [python, "-c", code],
        cwd=tree,
        env=_env(tree),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for path in out:
        if not Path(path).resolve().is_relative_to(tree.resolve()):
            raise RuntimeError(f"the copy imports {path}, not its own modules: mutants would not be tested")


def run_baseline(
    mutants: Sequence[Mutant],
    *,
    snapshot: Path,
    python: str,
    prove_deps: set[str],
    tests_override: Sequence[str],
    timeout: float,
) -> str:
    """Run the union of the mutants' test lists (and ``prove`` if any mutant needs it) on an unmutated
    copy of the snapshot; return a description of the first failure, or ``""`` when all pass."""
    tests: list[str] = []
    for m in mutants:
        for t in list(tests_override) or list(m.tests) or ["tests"]:
            if t not in tests:
                tests.append(t)
    cmds = [("pytest", [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests])]
    if any(m.file in prove_deps for m in mutants):
        cmds.append(("prove", [python, "-m", "ddcl_incrt.cli", "prove"]))
    with tempfile.TemporaryDirectory(prefix="mutation-baseline-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(snapshot, tree)
        check_copy_imports_itself(python, tree)
        print(f"baseline: {len(tests)} test paths on the unmutated tree", flush=True)
        for kind, cmd in cmds:
            proc = subprocess.run(
                cmd, cwd=tree, env=_env(tree), capture_output=True, text=True, timeout=4 * timeout, check=False
            )
            if proc.returncode != 0:
                return _first_failure(kind, proc.stdout + proc.stderr)
    return ""


def run_mutant(
    mutant: Mutant,
    *,
    snapshot: Path,
    python: str,
    prove_deps: set[str],
    tests_override: Sequence[str],
    timeout: float,
) -> Outcome:
    start = time.perf_counter()
    prove = mutant.file in prove_deps
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.id}-") as tmp:
        tree = Path(tmp) / "tree"
        shutil.copytree(snapshot, tree)
        target = tree / mutant.file
        text = target.read_text(encoding="utf-8")
        if text.count(mutant.find) != 1:  # the list was validated; the copy must agree
            raise MutantListError(f"mutant {mutant.id}: snippet not unique in the copy of {mutant.file}")
        target.write_text(text.replace(mutant.find, mutant.replace, 1), encoding="utf-8")
        check_copy_imports_itself(python, tree)
        outcome = Outcome(mutant.id, mutant.kind, mutant.file, "survived", 0.0, equivalent=mutant.equivalent)
        for kind, cmd in _commands(mutant, python, tests_override, prove):
            outcome.commands.append(" ".join([Path(cmd[0]).name, *cmd[1:]]))
            try:
                proc = subprocess.run(
                    cmd, cwd=tree, env=_env(tree), capture_output=True, text=True, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired:
                outcome.status, outcome.first_failure = "timeout", f"{kind}: timed out after {timeout:.0f} s"
                break
            if proc.returncode != 0:
                outcome.status = "caught"
                outcome.first_failure = _first_failure(kind, proc.stdout + proc.stderr)
                break
    outcome.seconds = time.perf_counter() - start
    return outcome


# --------------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------------


def score(outcomes: Sequence[Outcome]) -> tuple[int, int, float]:
    """``(caught, scored, caught/scored)``: mutants marked ``equivalent`` that survive are left out of
    ``scored`` (no test can tell them from the original); a caught "equivalent" one counts as caught."""
    caught = sum(o.caught for o in outcomes)
    scored = sum(1 for o in outcomes if o.caught or not o.equivalent)
    return caught, scored, (caught / scored if scored else 1.0)


def print_table(outcomes: Sequence[Outcome]) -> None:
    headers = ("id", "kind", "file", "status", "s", "first failing test / note")
    rows = [
        (
            o.id,
            o.kind,
            o.file,
            o.status + (" (equivalent)" if o.equivalent and not o.caught else ""),
            f"{o.seconds:.1f}",
            o.first_failure if o.caught else (o.equivalent or "NOT CAUGHT"),
        )
        for o in outcomes
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    widths[-1] = min(widths[-1], 90)
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c[:w].ljust(w) for c, w in zip(r, widths, strict=True)))


def per_kind(outcomes: Sequence[Outcome]) -> dict[str, dict[str, int]]:
    total: Counter[str] = Counter(o.kind for o in outcomes)
    caught: Counter[str] = Counter(o.kind for o in outcomes if o.caught)
    return {k: {"caught": caught[k], "total": total[k]} for k in sorted(total)}


def tree_state() -> tuple[str, bool]:
    """The checkout's commit and whether its working tree differs from it, now."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout)
    return commit, dirty


def write_json(
    path: Path, outcomes: Sequence[Outcome], args: argparse.Namespace, elapsed: float, tree: tuple[str, bool]
) -> None:
    """The run's JSON report; ``tree`` is :func:`tree_state` when the snapshot was taken: the mutants ran
    on that state, whatever the checkout became during a run of an hour or more."""
    caught, total, frac = score(outcomes)
    commit, dirty = tree
    payload = {
        "commit": commit,
        "working_tree_dirty": dirty,
        "selection": {"only": args.only, "file": args.file, "tests": args.tests},
        "seconds": round(elapsed, 1),
        "caught": caught,
        "scored": total,
        "total": len(outcomes),
        "equivalent_survivors": sum(1 for o in outcomes if o.equivalent and not o.caught),
        "score": round(frac, 4),
        "timeouts": sum(o.status == "timeout" for o in outcomes),
        "per_kind": per_kind(outcomes),
        "mutants": [{**asdict(o), "seconds": round(o.seconds, 1)} for o in outcomes],
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mutants", type=Path, default=DEFAULT_LIST, help="the mutant list (TOML)")
    p.add_argument("--only", nargs="+", metavar="ID", help="run only these mutant ids")
    p.add_argument("--file", action="append", metavar="PATH", help="run only mutants of this file (repeatable)")
    p.add_argument("--list", action="store_true", help="validate and list the mutants, run nothing")
    p.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    p.add_argument("--tests", nargs="+", metavar="EXPR", help="pytest arguments replacing every mutant's tests")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds per command before it counts as caught")
    p.add_argument("--min-score", type=float, default=0.95, help="exit non-zero below this caught fraction")
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="the project's interpreter")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"where to write the JSON report (default: {DEFAULT_OUT.relative_to(ROOT)} for a full run of the "
        f"curated list, {PARTIAL_OUT.relative_to(ROOT)} for a partial one: --only, --file, --tests or --mutants)",
    )
    return p


def is_partial(args: argparse.Namespace) -> bool:
    """A run of less than the whole curated list, or with other tests than each mutant's own."""
    return bool(args.only or args.file or args.tests) or args.mutants.resolve() != DEFAULT_LIST.resolve()


def output_path(args: argparse.Namespace) -> Path:
    """Where the JSON report goes: ``--out`` if given; else the tracked ``last_run.json`` for a full run
    only, so that a partial run (one mutant with ``--only``) never replaces the full run's record."""
    if args.out is not None:
        return Path(args.out)
    return PARTIAL_OUT if is_partial(args) else DEFAULT_OUT


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        mutants = load_mutants(args.mutants)
    except MutantListError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            print(f"error: unknown mutant ids {unknown}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in args.only]
    if args.file:
        mutants = [m for m in mutants if m.file in args.file]
    prove_deps = prove_dependencies()
    if args.list:
        for m in mutants:
            flags = ("prove " if m.file in prove_deps else "") + ("equivalent" if m.equivalent else "")
            print(f"{m.id:40s} {m.kind:20s} {m.file:36s} {flags}\n    {m.why}")
        print(f"{len(mutants)} mutants")
        return 0
    if not mutants:
        print("error: no mutant selected", file=sys.stderr)
        return 2
    if not Path(args.python).exists():
        print(f"error: interpreter {args.python} not found (set up .venv, see docs/mutation.md)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    # One snapshot of the working tree at start: every mutant is applied to a copy of the same state,
    # even if files are edited while the run is going on.
    snapshot_dir = tempfile.TemporaryDirectory(prefix="mutation-snapshot-")
    snapshot = Path(snapshot_dir.name) / "tree"
    tree = tree_state()
    _copy_tree(ROOT, _tree_files(ROOT), snapshot)
    for m in mutants:  # the snapshot must agree with the validated list
        if (snapshot / m.file).read_text(encoding="utf-8").count(m.find) != 1:
            print(f"error: mutant {m.id}: {m.file} changed after the list was validated", file=sys.stderr)
            return 2

    # Baseline: the unmutated snapshot must pass every command the mutants will run, or each mutant
    # would count that pre-existing failure as "caught" and the score would mean nothing.
    failure = run_baseline(
        mutants,
        snapshot=snapshot,
        python=args.python,
        prove_deps=prove_deps,
        tests_override=args.tests or (),
        timeout=args.timeout,
    )
    if failure:
        print(f"error: the unmutated tree fails ({failure}); fix it before measuring mutants", file=sys.stderr)
        snapshot_dir.cleanup()
        return 2

    def one(m: Mutant) -> Outcome:
        o = run_mutant(
            m,
            snapshot=snapshot,
            python=args.python,
            prove_deps=prove_deps,
            tests_override=args.tests or (),
            timeout=args.timeout,
        )
        print(f"  {o.id}: {o.status} ({o.seconds:.1f} s) {o.first_failure}", flush=True)
        return o

    print(f"running {len(mutants)} mutants, {args.jobs} at a time", flush=True)
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            outcomes = list(pool.map(one, mutants))
    finally:
        snapshot_dir.cleanup()
    elapsed = time.perf_counter() - start
    print()
    print_table(outcomes)
    caught, total, frac = score(outcomes)
    timeouts = sum(o.status == "timeout" for o in outcomes)
    equivalent = len(outcomes) - total
    print(
        f"\nscore: {caught}/{total} caught = {frac:.1%} ({timeouts} by timeout; "
        f"{equivalent} equivalent survivors not scored; {len(outcomes)} run), {elapsed:.0f} s"
    )
    for o in outcomes:
        if o.caught and o.equivalent:
            print(f"note: {o.id} is marked equivalent but was caught ({o.first_failure}): drop the mark")
    for kind, c in per_kind(outcomes).items():
        print(f"  {kind:20s} {c['caught']}/{c['total']}")
    survivors = [o for o in outcomes if not o.caught]
    if survivors:
        print("survivors: " + ", ".join(o.id + (" (equivalent)" if o.equivalent else "") for o in survivors))
    out = output_path(args)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, outcomes, args, elapsed, tree)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0 if frac >= args.min_score else 1


if __name__ == "__main__":
    sys.exit(main())
