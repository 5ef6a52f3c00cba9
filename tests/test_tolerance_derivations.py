"""Every fixed row of the tolerance table (``reference.tolerances.TABLE``) recomputed from its derivation in
docs/tolerances.md, so that a row loosened (or tightened) ten times fails here.

The formulas below are transcribed from the document, not read from the module: the unit roundoff
``u = 2^-53`` (float64) and ``2^-24`` (float32) of "The model of floating-point arithmetic", and each
row's "why" in "The fixed rows of the table". A row whose number the document states but does not
derive (the GRADIENT atols, the DECISION rows) is held to the document's own table instead
(:func:`test_every_documented_row_is_the_table_row`), which is parsed from the markdown.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from reference.tolerances import TABLE, CheckKind, Tolerance, tolerance

DOC = Path(__file__).resolve().parents[1] / "docs" / "tolerances.md"

# docs/tolerances.md, "The model of floating-point arithmetic": u = 2^-53 in float64, 2^-24 in float32.
U = {"float64": 2.0**-53, "float32": 2.0**-24}


def _nearest_decade(x: float) -> float:
    """``x`` rounded to the nearest power of ten (the table states each derived number to one decade)."""
    return 10.0 ** round(math.log10(x))


def _row(dtype: str, kind: CheckKind) -> Tolerance:
    return tolerance(dtype, kind)


# -- VALUE ---------------------------------------------------------------------------------------------


def test_float64_value_row_is_a_hundred_operations_times_a_hundred() -> None:
    """The document: "O(1)-scaled quantities after O(10²) operations: 10²·2^-53 ≈ 1e-14, ×100 for
    cancellation"; the quantities are O(1)-scaled, so the absolute and the relative parts are the same."""
    derived = _nearest_decade(1e2 * U["float64"] * 100.0)
    assert derived == 1e-12  # the document's arithmetic
    row = _row("float64", CheckKind.VALUE)
    assert (row.rtol, row.atol) == (derived, derived)


def test_float32_value_row_is_a_hundred_operations_times_ten() -> None:
    """The document: "10²·2^-24 ≈ 6e-6, ×10": the relative part is 10²·u·10 to its decade, the absolute
    part the bare 10²·u to its decade (the table's 1e-5; the document gives no other source for it)."""
    rounding = 1e2 * U["float32"]
    assert rounding == pytest.approx(6e-6, rel=0.01)  # the document's "≈ 6e-6"
    row = _row("float32", CheckKind.VALUE)
    assert row.rtol == _nearest_decade(rounding * 10.0) == 1e-4
    assert row.atol == _nearest_decade(rounding) == 1e-5


# -- GRADIENT ------------------------------------------------------------------------------------------


def test_float64_gradient_rtol_leaves_four_orders_over_u_two_thirds_and_meets_the_acceptance_criterion() -> None:
    """Central differences with ``h = u^{1/3}``: truncation and rounding are both ``~u^{2/3}``; the row
    keeps "four orders of margin" over that, and is "the issue's acceptance criterion (relative error
    ≤ 1e-6)". So ``10⁴·u^{2/3} ≤ rtol ≤ 1e-6``: ten times looser breaks the criterion, ten times
    tighter eats the margin."""
    error = U["float64"] ** (2.0 / 3.0)
    rtol = _row("float64", CheckKind.GRADIENT).rtol
    assert 1e4 * error <= rtol <= 1e-6


def test_float32_gradient_rtol_is_u_two_thirds_times_a_thousand() -> None:
    """The document: "The same argument in float32", with a curvature margin of 10³: ``u^{2/3}·10³`` to its decade.

    (The document writes ``u^{2/3} ≈ 4e-6`` for float32; ``(2^-24)^{2/3} = 2^-16 ≈ 1.5e-5``. Either
    value rounds to the same decade here.)"""
    error = U["float32"] ** (2.0 / 3.0)
    assert error == pytest.approx(2.0**-16, rel=1e-12)
    assert _row("float32", CheckKind.GRADIENT).rtol == _nearest_decade(error * 1e3) == 1e-2


def test_gradient_atol_covers_the_rounding_part_and_stays_a_floor_below_rtol() -> None:
    """The atol is the floor of the relative error's denominator, per unit of ``max(1, |f|)``, for the
    rounding part ``u|f|/h = u^{2/3}|f|``: it must exceed that part and stay below the rtol."""
    for dtype in ("float64", "float32"):
        row = _row(dtype, CheckKind.GRADIENT)
        assert U[dtype] ** (2.0 / 3.0) < row.atol < row.rtol, dtype


# -- INVARIANT, STOCHASTIC ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_invariant_multiplier_is_the_four_compared_quantities(dtype: str) -> None:
    """The document: "An invariant compares at most four independently rounded quantities ..., so the residual is at
    most 4γ_m·scale": c = 4 in both dtypes ("as float64"), and no absolute part."""
    row = _row(dtype, CheckKind.INVARIANT)
    assert (row.rtol, row.atol) == (4.0, 0.0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_stochastic_row_is_four_u_per_unit_of_k(dtype: str) -> None:
    """The document: "A computed softmax row sums to 1 within (K + 2)u": per unit of K that is at most 3u for every
    K ≥ 1, stated as 4u (the float32 row "as float64", with float32's u); no relative part."""
    row = _row(dtype, CheckKind.STOCHASTIC)
    assert (row.rtol, row.atol) == (0.0, 4.0 * U[dtype])
    assert all((K + 2) * U[dtype] <= row.atol * K for K in range(1, 1025))


# -- DECISION -------------------------------------------------------------------------------------------


def test_float32_decision_row_is_the_documented_relative_width() -> None:
    """The float32 DECISION row is not in the document's table; its trajectory section states it:
    "within float32's DECISION row (1e-4 relative)"."""
    assert _row("float32", CheckKind.DECISION).rtol == 1e-4
    assert "float32's DECISION row (`1e-4` relative)" in DOC.read_text(encoding="utf-8")


# -- the document's table, row by row --------------------------------------------------------------------


_NUMBER = re.compile(r"^\d+(?:\.\d+)?(?:e-?\d+)?$")


def _documented_rows() -> dict[tuple[str, CheckKind], tuple[float | None, float | None]]:
    """``(dtype, kind) -> (rtol, atol)`` from the table under "The fixed rows of the table" (``None``
    where the cell is not a plain number, e.g. "4u per unit of K")."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The fixed rows of the table", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, CheckKind], tuple[float | None, float | None]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("dtype, kind", "---"):
            continue
        words = cells[0].split()
        kind = CheckKind(words[-1].lower())
        dtypes = words[:-1] or ["float64", "float32"]  # "INVARIANT" alone: both dtypes
        rtol, atol = (float(c) if _NUMBER.match(c) else None for c in cells[1:3])
        for dtype in dtypes:
            rows[(dtype, kind)] = (rtol, atol)
    return rows


def test_the_documents_table_parses_to_the_rows_it_lists() -> None:
    rows = _documented_rows()
    assert rows[("float64", CheckKind.VALUE)] == (1e-12, 1e-12)
    assert rows[("float64", CheckKind.STOCHASTIC)] == (0.0, None)  # "4u per unit of K"
    assert rows[("float32", CheckKind.INVARIANT)] == (None, None)  # "c = 4", "—"
    assert len(rows) >= 8


def test_every_documented_row_is_the_table_row() -> None:
    """Each number the document's table states equals the code's row exactly, so a row changed in one
    place and not the other (e.g. the DECISION rows, which the document states without deriving) fails."""
    for (dtype, kind), (rtol, atol) in _documented_rows().items():
        row = TABLE[(dtype, kind)]
        if rtol is not None:
            assert row.rtol == rtol, (dtype, kind.value, "rtol")
        if atol is not None:
            assert row.atol == atol, (dtype, kind.value, "atol")


def test_every_row_of_the_table_is_pinned_here() -> None:
    """A row added to the table needs a derivation above or a row in the document's table."""
    derived_here = {
        ("float64", CheckKind.VALUE),
        ("float32", CheckKind.VALUE),
        ("float64", CheckKind.GRADIENT),
        ("float32", CheckKind.GRADIENT),
        ("float64", CheckKind.INVARIANT),
        ("float32", CheckKind.INVARIANT),
        ("float64", CheckKind.STOCHASTIC),
        ("float32", CheckKind.STOCHASTIC),
        ("float32", CheckKind.DECISION),
    }
    assert set(TABLE) <= derived_here | set(_documented_rows())
