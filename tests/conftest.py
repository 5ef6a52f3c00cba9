"""Test-suite configuration.

* Hypothesis profiles chosen by ``DDCL_HYPOTHESIS_PROFILE``: ``dev`` (default, what the README's test
  command and CI run: a moderate number of random examples, with the example database), ``ci``
  (derandomized, no database: for reproducing a run bit for bit), ``thorough`` (many more examples,
  for runs on purpose).
* The seed: unless ``--hypothesis-seed`` is given or the profile is derandomized, a fresh random seed
  is drawn and forced for the whole run, and printed in the header and again in the summary, so a
  failure seen once (in CI, on a user's machine) is reproduced with ``--hypothesis-seed=N``.
* The ``claim(id, kind)`` marker (:mod:`ddcl_incrt.claim_tests`): collected here, checked against the
  registry, kept on the config for ``tests/test_registry.py``; with ``DDCL_CLAIM_TESTS_OUT`` set, the
  collected map is also written there as JSON (how a partial run gets the whole suite's map).

jaxtyping's shape/dtype checks on ``reference`` are switched on by pytest's ``--jaxtyping-packages``
option in ``pyproject.toml``.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis.core
import pytest
import threadpoolctl
from hypothesis import HealthCheck, settings

from ddcl_incrt.claim_tests import MARKER_HELP, OUT_ENV, ClaimTests, claim_tests
from reference.claims.registry import REGISTRY

settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("DDCL_HYPOTHESIS_PROFILE", "dev"))

CLAIM_TESTS = pytest.StashKey[ClaimTests]()
COLLECTED_FILES = pytest.StashKey[frozenset[str]]()
HYPOTHESIS_SEED = pytest.StashKey[str]()
_WORKER_SEED = "ddcl_hypothesis_seed"


def _force_hypothesis_seed(config: pytest.Config, seed: int) -> None:
    """What ``--hypothesis-seed=N`` does, with N drawn (or received from the controller) here."""
    config.option.hypothesis_seed = str(seed)
    hypothesis.core.global_force_seed = seed


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    worker_input: dict[str, object] | None = getattr(config, "workerinput", None)
    if worker_input is not None:
        _configure_xdist_worker(config, worker_input)
        return
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_SeedToWorkers(), "ddcl-seed-to-workers")
    given = config.getoption("hypothesis_seed", default=None)
    if given is not None:
        config.stash[HYPOTHESIS_SEED] = f"seed {given} (given)"
    elif settings.default.derandomize:
        config.stash[HYPOTHESIS_SEED] = f"derandomized (profile {settings.get_current_profile_name()!r})"
    else:
        seed = secrets.randbelow(2**32)
        _force_hypothesis_seed(config, seed)
        config.stash[HYPOTHESIS_SEED] = f"seed {seed} (random; reproduce with --hypothesis-seed={seed})"


class _SeedToWorkers:
    """pytest-xdist's workers get the controller's command line, not its options: hand them the seed
    drawn above, so that every worker runs the one seed that is printed (and reproduces the run)."""

    @pytest.hookimpl
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_WORKER_SEED] = node.config.option.hypothesis_seed


def _configure_xdist_worker(config: pytest.Config, worker_input: dict[str, object]) -> None:
    """One thread per worker: the workers already use every core (``-n auto``), and torch's and the
    BLAS's own threads on top of them thrash a 2-core machine. Subprocesses inherit the limit."""
    seed = worker_input.get(_WORKER_SEED)
    if seed is not None and not settings.default.derandomize:
        _force_hypothesis_seed(config, int(str(seed)))
    config.stash[HYPOTHESIS_SEED] = f"seed {seed} (from the controller)"
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    threadpoolctl.threadpool_limits(1)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


def _seed_line(config: pytest.Config) -> str:
    return f"hypothesis profile {settings.get_current_profile_name()!r}, {config.stash[HYPOTHESIS_SEED]}"


def pytest_report_header(config: pytest.Config) -> str:
    return _seed_line(config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    terminalreporter.write_line(_seed_line(config))


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        found = claim_tests(items, REGISTRY)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[CLAIM_TESTS] = found
    config.stash[COLLECTED_FILES] = frozenset(Path(item.path).name for item in items)
    out = os.environ.get(OUT_ENV)
    if out:
        Path(out).write_text(json.dumps(found, indent=1, sort_keys=True), encoding="utf-8")


@pytest.fixture
def port_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A conformance port's folder: the current working directory is ``tmp_path`` (where ``--adapter
    module:factory`` finds its module); modules imported from it are forgotten afterwards."""
    monkeypatch.chdir(tmp_path)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]
