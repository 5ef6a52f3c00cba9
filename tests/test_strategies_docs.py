"""docs/strategies.md cannot rot: its Python blocks run in order as one script, its planted bugs are
caught, its tables agree with the code; and ``ddcl_incrt.strategies`` exports exactly its ``__all__``,
each exported strategy drawing a value of the documented type."""

from __future__ import annotations

import ast
import inspect
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ddcl_incrt.strategies as strategies
from ddcl_incrt.strategies import _caps
from ddcl_incrt.strategies import ddcl as sddcl
from ddcl_incrt.strategies import incrt as sincrt
from ddcl_incrt.strategies import model as smodel
from reference.invariants import ClaimViolation
from reference.invariants import ddcl as inv_ddcl
from reference.model import LayerConfig

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "strategies.md"
FENCE = re.compile(r"^```(\w*)[ \t]*$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line of the block's first code line, code)`` for every ```` ```python ```` block of ``text``."""
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        if end is None:
            raise ValueError(f"{DOC.name}:{i + 1}: a code block is never closed")
        if opening.group(1) == "python":
            blocks.append((i + 2, "\n".join(lines[i + 1 : end]) + "\n"))
        i = end + 1
    return blocks


def run_blocks(blocks: list[tuple[int, str]], filename: str) -> dict[str, Any]:
    """Execute ``blocks`` in order in one namespace, each compiled with its own line numbers of ``filename``
    (so a traceback, and hypothesis's source lookup, point at the page's lines)."""
    namespace: dict[str, Any] = {"__name__": "docs_strategies"}
    for first_line, code in blocks:
        exec(compile("\n" * (first_line - 1) + code, filename, "exec"), namespace)
    return namespace


# --------------------------------------------------------------------------------------------------
# The page runs, and its planted bugs are caught
# --------------------------------------------------------------------------------------------------


def test_the_page_runs_and_catches_its_planted_bugs() -> None:
    """Every Python block runs (one script, in order); then: the unshifted softmax is refused (NaN
    assignments) or violates D2; the inverse temperature violates D2, every reported check failed; the
    G5 residual without ½ violates G5; and on one input the port passes where the planted bug fails
    (the bug is in the planted function, not in the port it replaces). One test, so the page runs once."""
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 8
    doc = run_blocks(blocks, str(DOC))

    unshifted = doc["unshifted"].value
    assert isinstance(unshifted, ValueError | ClaimViolation), type(unshifted)
    if isinstance(unshifted, ClaimViolation):
        assert {r.claim_id for r in unshifted.results} == {"D2"}
    inverse_t = doc["inverse_t"].value
    assert isinstance(inverse_t, ClaimViolation)
    assert {r.claim_id for r in inverse_t.results} == {"D2"}
    assert not any(r.holds for r in inverse_t.results)
    no_half = doc["no_half"].value
    assert isinstance(no_half, ClaimViolation)
    assert {r.claim_id for r in no_half.results} == {"G5"}

    Y, P, T_P = np.array([[0.0, 1.0], [2.0, 0.5]]), np.array([[0.0, 2.0], [1.0, 0.0]]), 0.25
    good = inv_ddcl.d2_free_energy_gradients(Y=Y, P=P, T_P=T_P, ops=doc["MY_OPS"])
    bad = inv_ddcl.d2_free_energy_gradients(Y=Y, P=P, T_P=T_P, ops=doc["INVERSE_T"])
    assert all(r.holds for r in good)
    assert not all(r.holds for r in bad)


def test_block_extraction_keeps_the_page_line_numbers() -> None:
    """Meta: each extracted block sits at the reported line of the page, and a failing block's traceback
    names the page's line."""
    text = DOC.read_text(encoding="utf-8")
    lines = text.splitlines()
    for first_line, code in python_blocks(text):
        body = code.splitlines()
        assert lines[first_line - 2] == "```python"
        assert lines[first_line - 1 : first_line - 1 + len(body)] == body
    page = "intro\n\n```python\nx = 1\n```\n\n```text\nnot code\n```\n\n```python\n\nraise KeyError(x)\n```\n"
    assert [line for line, _ in python_blocks(page)] == [4, 12]
    with pytest.raises(KeyError) as err:
        run_blocks(python_blocks(page), "page.md")
    assert err.traceback[-1].lineno + 1 == 13  # pytest's traceback lines are 0-based


def test_an_unclosed_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="never closed"):
        python_blocks("```python\nx = 1\n")


# --------------------------------------------------------------------------------------------------
# The page's tables agree with the code
# --------------------------------------------------------------------------------------------------


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _ops_used(function: Callable[..., object]) -> set[str]:
    """The ``ops.<entry>`` attributes a DDCL invariant reads (its source, through the decorator)."""
    tree = ast.parse(inspect.getsource(inspect.unwrap(function)))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ops"
    }


def test_the_ddcl_ops_table_lists_the_entries_each_invariant_calls() -> None:
    rows = _table_rows(DOC.read_text(encoding="utf-8"), "| invariant | `DDCLOps` entries it calls |")
    documented = {claim: set(re.findall(r"`(\w+)`", entries)) for claim, entries in rows}
    invariants: dict[str, Callable[..., object]] = {
        "D1": inv_ddcl.d1_decomposition,
        "D2": inv_ddcl.d2_free_energy_gradients,
        "D3": inv_ddcl.d3_lyapunov,
        "D4": inv_ddcl.d4_anti_collapse,
        "D5": inv_ddcl.d5_prototype_pruning,
        "D6": inv_ddcl.d6_dual_vanilla,
    }
    assert documented == {claim: _ops_used(fn) for claim, fn in invariants.items()}
    fields = set(inv_ddcl.DDCLOps.__dataclass_fields__)
    assert set().union(*documented.values()) <= fields


def test_the_strategy_table_names_every_exported_strategy() -> None:
    rows = _table_rows(DOC.read_text(encoding="utf-8"), "| strategy | generates | for |")
    documented = {name for row in rows for name in re.findall(r"`(\w+)(?:\(|`)", row[0])}
    assert documented == set(STRATEGIES)


# --------------------------------------------------------------------------------------------------
# The package's exports
# --------------------------------------------------------------------------------------------------

# Every exported strategy (a strategy, or a function returning one), built with small arguments, and the
# type of what it draws. A new export must be added here (the tests below check the set is complete).
STRATEGIES: dict[str, tuple[Callable[[], st.SearchStrategy[Any]], type | tuple[type, ...]]] = {
    "ddcl_problems": (lambda: strategies.ddcl_problems(min_K=2, max_K=3), sddcl.DDCLProblem),
    "moderate_ddcl_problems": (strategies.moderate_ddcl_problems, sddcl.DDCLProblem),
    "row_stochastic": (lambda: strategies.row_stochastic(3, 2), np.ndarray),
    "dcl_problems": (strategies.dcl_problems, tuple),
    "scale_exponents": (lambda: strategies.scale_exponents, int),
    "moderate_scale_exponents": (lambda: strategies.moderate_scale_exponents, int),
    "temperatures": (lambda: strategies.temperatures, float),
    "moderate_temperatures": (lambda: strategies.moderate_temperatures, float),
    "planted_operators": (lambda: strategies.planted_operators(min_m_star=1), sincrt.PlantedOperator),
    "orthogonal_matrices": (lambda: strategies.orthogonal_matrices(3), np.ndarray),
    "orthonormal_sets": (lambda: strategies.orthonormal_sets(3, 2), np.ndarray),
    "antisymmetric_matrices": (lambda: strategies.antisymmetric_matrices(3), np.ndarray),
    "second_moments": (lambda: strategies.second_moments(3), np.ndarray),
    "prune_problems": (strategies.prune_problems, sincrt.PruneProblem),
    "layer_configs": (strategies.layer_configs, LayerConfig),
    "head_op_sequences": (lambda: strategies.head_op_sequences(min_heads=2), tuple),
    "model_specs": (strategies.model_specs, smodel.ModelSpec),
}
SUBMODULES = (_caps, sddcl, sincrt, smodel)


def _is_strategy(value: object) -> bool:
    """A strategy, or a public function that builds one (plain or ``@st.composite``)."""
    if isinstance(value, st.SearchStrategy):
        return True
    return inspect.isfunction(value) and "SearchStrategy" in str(inspect.signature(value).return_annotation)


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, Any] = {}
    exec("from ddcl_incrt.strategies import *", namespace)
    namespace.pop("__builtins__")
    assert set(namespace) == set(strategies.__all__)
    assert len(strategies.__all__) == len(set(strategies.__all__))


def test_every_export_is_the_submodules_object() -> None:
    """Re-exports, not copies: each name is importable from its submodule too, as the same object."""
    for name in strategies.__all__:
        homes = [m for m in SUBMODULES if name in m.__all__]
        assert len(homes) == 1 or name == "scale_exponents", f"{name}: exported by {[m.__name__ for m in homes]}"
        assert getattr(strategies, name) is getattr(homes[0], name), name
    assert strategies.scale_exponents is sddcl.scale_exponents  # the DDCL scales, ddcl_problems' default


def test_every_exported_strategy_is_listed_and_documented() -> None:
    exported = {name for name in strategies.__all__ if _is_strategy(getattr(strategies, name))}
    assert exported == set(STRATEGIES)
    for name in exported:
        assert f"``{name}" in (strategies.__doc__ or ""), f"the package docstring does not describe {name}"


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_exported_strategy_draws_a_value(name: str) -> None:
    build, kind = STRATEGIES[name]
    strategy = build()
    assert isinstance(strategy, st.SearchStrategy)

    @settings(max_examples=5, deadline=None, database=None)
    @given(data=st.data())
    def draws(data: st.DataObject) -> None:
        assert isinstance(data.draw(strategy), kind)

    draws()


def test_without_hypothesis_the_import_error_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['hypothesis'] = None  # as if not installed\n"
        "try:\n"
        "    import ddcl_incrt.strategies\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc.name, '|', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == (
        'hypothesis | ddcl_incrt.strategies needs hypothesis, its "strategies" extra: '
        'pip install -e ".[strategies]" in a clone (not on PyPI), or pip install hypothesis'
    )
