"""The audit report (``ddcl_incrt.audit.figures`` and ``ddcl_incrt.audit.report``).

* Every figure plots what the record says: each figure's data is compared with the record, then the
  record is changed (``dataclasses.replace``) and the data must change by exactly that much.
* Figures survive thin records (no events, one check, no checks, a non-finite loss).
* ``write_report`` writes every file; ``report.md`` and ``report.html`` carry the same findings and
  claim rows; the HTML claim table equals ``summary.json`` and the claim registry; the HTML is
  self-contained (no external address, one embedded PNG per figure).
* A headless Chromium renders the HTML to a non-blank screenshot and reports every image decoded
  (skipped without Chromium, except under ``CI=true``, where its absence is a failure).
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _small_run import small_run
from _snippets import headless_chromium
from matplotlib.image import imread

from ddcl_incrt.audit.figures import (
    FIGURES,
    TRACKER_FLOOR,
    accuracy_data,
    architecture_data,
    growth_signal_data,
    heads_data,
    loss_data,
    spectrum_at_births_data,
    trackers_data,
)
from ddcl_incrt.audit.report import CLAIM_COLUMNS, NOT_IMPLEMENTED, report_files, summary_json, write_report
from ddcl_incrt.audit.summary import audit_summary
from ddcl_incrt.audit.verdicts import ABSTRACT_CLAIMS
from reference.claims.registry import REGISTRY
from reference.incrt.controller import EventKind, GrowthEvent
from reference.log import CheckRecord
from training.record import RunRecord

FIGURE_NAMES = [
    "loss",
    "accuracy",
    "architecture",
    "spectrum_at_births",
    "growth_signal",
    "heads",
    "trackers",
    "separation",
    "granularity",
    "feedback",
]


@pytest.fixture(scope="module")
def record() -> RunRecord:
    """A small real run (well under a second): one birth, one head prune, two prototype prunes."""
    return small_run()


@pytest.fixture(scope="module")
def summary(record: RunRecord) -> dict[str, Any]:
    return audit_summary(record, engine="reference", wall_time_s=record.wall_time_s)


@pytest.fixture(scope="module")
def report(record: RunRecord, summary: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_report(tmp_path_factory.mktemp("audit") / "out", record, summary)


def test_the_files_the_audit_checks_before_training_are_those_the_report_writes(report: dict[str, Path]) -> None:
    """``report_files`` is what ``audit`` checks in ``--out`` before it trains: exactly what
    ``write_report`` writes (a file it forgot could be found taken only after the run)."""
    assert sorted(report) == sorted(report_files())
    assert len(report_files()) == len(set(report_files()))


def test_the_fixture_run_has_every_kind_of_event(record: RunRecord) -> None:
    """The figure tests below mean something only if the run grew, pruned a head and pruned prototypes."""
    kinds = {e.kind for e in record.events}
    assert {EventKind.BIRTH, EventKind.HEAD_PRUNE, EventKind.PROTOTYPE_PRUNE} <= kinds
    assert len(record.checks) > 1


def test_the_accuracy_and_dwell_data_are_the_records(record: RunRecord) -> None:
    acc = accuracy_data(record)
    assert acc["test"].tolist() == [e.test_accuracy for e in record.evaluations]
    assert acc["steps"].tolist() == [e.step for e in record.evaluations]
    assert acc["chance"] == 1.0 / record.layer_config.n_classes
    g = growth_signal_data(record)
    assert g["T_d"] == record.train_config.T_d
    edited = replace(record, train_config=replace(record.train_config, T_d=record.train_config.T_d + 7))
    # the shaded checks are those fewer than T_d steps after the last birth (or the start), births' own
    # excluded; with the run's T_d (its check interval) no check is blocked, with T_d + 7 some are
    assert g["dwell_spans"].size == 0
    births = [e.step for e in edited.births()]
    spans = growth_signal_data(edited)["dwell_spans"].reshape(-1, 2).tolist()
    shaded = []
    for c in edited.checks:
        since = c.step - max((b for b in births if b < c.step), default=0)
        blocked = c.step not in births and since < edited.train_config.T_d
        assert any(lo < c.step < hi for lo, hi in spans) is blocked, (c.step, since)
        shaded.append(blocked)
    assert any(shaded), "some checks are within T_d + 7 of a birth (the premise)"
    assert not all(shaded), "some checks are not (the premise)"
    assert growth_signal_data(edited)["T_d"] == record.train_config.T_d + 7


def test_figures_are_registered_in_report_order() -> None:
    assert [f.name for f in FIGURES] == FIGURE_NAMES
    assert all(f.title and f.caption for f in FIGURES)


@pytest.mark.parametrize("spec", FIGURES, ids=lambda s: s.name)
def test_figure_data_are_arrays_lists_or_floats(record: RunRecord, spec: Any) -> None:
    data = spec.data_fn(record)
    assert data
    assert all(isinstance(v, list | np.ndarray | float) for v in data.values()), {k: type(v) for k, v in data.items()}


# -- every figure plots the record ----------------------------------------------------------------


def _with_checks(record: RunRecord, change: Callable[[CheckRecord], dict[str, Any]]) -> RunRecord:
    return replace(record, checks=tuple(replace(c, **change(c)) for c in record.checks))


def _with_events(record: RunRecord, change: Callable[[GrowthEvent], dict[str, Any]]) -> RunRecord:
    return replace(record, events=tuple(replace(e, **change(e)) for e in record.events))


def _as_list(value: object) -> list[Any]:
    assert isinstance(value, list), type(value)
    return value


def _scaled(values: tuple[float, ...], k: float) -> tuple[float, ...]:
    return tuple(k * v for v in values)


def test_loss_figure_plots_the_recorded_losses(record: RunRecord) -> None:
    d = loss_data(record)
    lo = record.losses
    for name in ("L", "L_task", "L_q", "L_OLS", "V"):
        np.testing.assert_array_equal(d[name], np.asarray(getattr(lo, name)))
    np.testing.assert_array_equal(d["steps"], np.arange(1, len(lo.L) + 1))
    assert float(np.asarray(d["identity_residual"])) < 1e-9  # D1: L_q = L_OLS + V

    doubled = loss_data(replace(record, losses=replace(lo, V=_scaled(lo.V, 2.0), L=_scaled(lo.L, 3.0))))
    np.testing.assert_allclose(doubled["V"], 2.0 * np.asarray(d["V"]), rtol=1e-15)
    np.testing.assert_allclose(doubled["L"], 3.0 * np.asarray(d["L"]), rtol=1e-15)
    np.testing.assert_array_equal(doubled["L_OLS"], d["L_OLS"])
    np.testing.assert_array_equal(doubled["L_task"], d["L_task"])
    # L_q no longer equals L_OLS + 2V: the residual is the largest V
    assert float(np.asarray(doubled["identity_residual"])) == pytest.approx(max(lo.V), rel=1e-9)


def test_architecture_figure_plots_the_checks_and_events(record: RunRecord) -> None:
    d = architecture_data(record)
    arch = record.architecture
    np.testing.assert_array_equal(np.asarray(d["n_heads"])[1:-1], [c.n_heads for c in record.checks])
    np.testing.assert_array_equal(np.asarray(d["n_prototypes"])[1:-1], [c.n_prototypes for c in record.checks])
    np.testing.assert_array_equal(d["steps"], [0, *(c.step for c in record.checks), len(record.losses.L)])
    assert np.asarray(d["n_heads"])[-1] == arch.n_heads
    assert np.asarray(d["n_prototypes"])[-1] == arch.n_prototypes
    for key, kind in (
        ("birth_steps", EventKind.BIRTH),
        ("head_prune_steps", EventKind.HEAD_PRUNE),
        ("prototype_prune_steps", EventKind.PROTOTYPE_PRUNE),
    ):
        assert d[key] == [e.step for e in record.events if e.kind is kind]
        assert d[key]

    changed = _with_checks(record, lambda c: {"n_heads": c.n_heads + 3, "n_prototypes": c.n_prototypes * 2})
    changed = _with_events(changed, lambda e: {"step": e.step + 5})
    changed = replace(changed, architecture=replace(arch, n_heads=7))
    d2 = architecture_data(changed)
    np.testing.assert_array_equal(np.asarray(d2["n_heads"])[:-1], np.asarray(d["n_heads"])[:-1] + 3)
    np.testing.assert_array_equal(np.asarray(d2["n_prototypes"])[1:-1], np.asarray(d["n_prototypes"])[1:-1] * 2)
    assert np.asarray(d2["n_heads"])[-1] == 7
    assert d2["birth_steps"] == [s + 5 for s in _as_list(d["birth_steps"])]
    assert d2["prototype_prune_steps"] == [s + 5 for s in _as_list(d["prototype_prune_steps"])]
    assert architecture_data(replace(record, events=()))["birth_steps"] == []


def test_spectrum_figure_plots_the_check_at_each_birth(record: RunRecord) -> None:
    d = spectrum_at_births_data(record)
    by_step = {c.step: c for c in record.checks}
    births = record.births()
    assert d["birth_steps"] == [e.step for e in births]
    assert d["spectra"] == [list(by_step[e.step].spectrum) for e in births]
    assert d["theta"] == [by_step[e.step].theta for e in births]
    for spec, theta in zip(_as_list(d["spectra"]), _as_list(d["theta"]), strict=True):
        assert spec[0] > theta  # spectral ordering: the birth's top eigenvalue is above θ

    steps = set(d["birth_steps"])
    d2 = spectrum_at_births_data(
        _with_checks(record, lambda c: {"spectrum": _scaled(c.spectrum, 2.0), "theta": 0.07} if c.step in steps else {})
    )
    for a, b in zip(_as_list(d2["spectra"]), _as_list(d["spectra"]), strict=True):
        np.testing.assert_allclose(a, 2.0 * np.asarray(b), rtol=1e-15)
    assert d2["theta"] == [0.07] * len(births)
    no_births = spectrum_at_births_data(replace(record, events=tuple(e for e in record.events if e not in births)))
    assert no_births["birth_steps"] == no_births["spectra"] == no_births["missing_steps"] == []
    lost = spectrum_at_births_data(replace(record, checks=tuple(c for c in record.checks if c.step not in steps)))
    assert lost["spectra"] == []
    assert lost["missing_steps"] == d["birth_steps"]


def test_growth_signal_figure_plots_lam_max_over_theta(record: RunRecord) -> None:
    d = growth_signal_data(record)
    np.testing.assert_allclose(d["ratio"], [c.lam_max / c.theta for c in record.checks], rtol=1e-15)
    np.testing.assert_array_equal(d["steps"], [c.step for c in record.checks])
    births = record.births()
    np.testing.assert_array_equal(d["birth_steps"], [e.step for e in births])
    assert np.all(np.asarray(d["birth_ratio"]) > 1.0)  # a birth is a crossing of the line 1

    d2 = growth_signal_data(
        _with_events(
            _with_checks(record, lambda c: {"lam_max": 2.0 * c.lam_max}), lambda e: {"statistic": 2.0 * e.statistic}
        )
    )
    np.testing.assert_allclose(d2["ratio"], 2.0 * np.asarray(d["ratio"]), rtol=1e-15)
    np.testing.assert_allclose(d2["birth_ratio"], 2.0 * np.asarray(d["birth_ratio"]), rtol=1e-15)
    d3 = growth_signal_data(_with_checks(record, lambda c: {"theta": 4.0 * c.theta}))
    np.testing.assert_allclose(d3["ratio"], np.asarray(d["ratio"]) / 4.0, rtol=1e-15)


def test_heads_figure_plots_tau_and_strength_per_head(record: RunRecord) -> None:
    d = heads_data(record)
    ids = d["head_ids"]
    assert ids == sorted({h for c in record.checks for h in c.tau})  # ids are handed out in birth order
    tau, strength = np.asarray(d["tau"]), np.asarray(d["strength"])
    assert tau.shape == strength.shape == (len(ids), len(record.checks))
    for j, c in enumerate(record.checks):
        for i, h in enumerate(ids):
            if h in c.tau:
                assert tau[i, j] == c.tau[h]
                assert strength[i, j] == c.head_strength[h]
            else:
                assert math.isnan(tau[i, j])
                assert math.isnan(strength[i, j])
    np.testing.assert_array_equal(d["phi_g"], [c.phi_g for c in record.checks])

    d2 = heads_data(
        _with_checks(
            record,
            lambda c: {
                "tau": {h: 2.0 * v for h, v in c.tau.items()},
                "head_strength": {h: 0.5 * v for h, v in c.head_strength.items()},
                "phi_g": 3.0,
            },
        )
    )
    np.testing.assert_allclose(d2["tau"], 2.0 * tau, rtol=1e-15)  # NaN where absent, in both
    np.testing.assert_allclose(d2["strength"], 0.5 * strength, rtol=1e-15)
    np.testing.assert_array_equal(d2["phi_g"], np.full(len(record.checks), 3.0))


def test_trackers_figure_plots_the_g6_gaps(record: RunRecord) -> None:
    d = trackers_data(record)
    cs = record.checks
    np.testing.assert_allclose(d["oja_lam_rel"], [c.oja_lam_gap / c.theta for c in cs], rtol=1e-15)
    np.testing.assert_allclose(d["exin_lam_rel"], [c.exin_lam_gap / c.theta for c in cs], rtol=1e-15)
    np.testing.assert_allclose(d["oja_angle"], [1.0 - abs(c.oja_cos) for c in cs], rtol=1e-15)
    np.testing.assert_allclose(d["exin_angle"], [1.0 - abs(c.exin_cos) for c in cs], rtol=1e-15)
    assert d["floor"] == TRACKER_FLOOR

    d2 = trackers_data(_with_checks(record, lambda c: {"oja_lam_gap": 2.0 * c.oja_lam_gap, "exin_cos": -0.5}))
    np.testing.assert_allclose(d2["oja_lam_rel"], 2.0 * np.asarray(d["oja_lam_rel"]), rtol=1e-15)
    np.testing.assert_array_equal(d2["exin_angle"], np.full(len(cs), 0.5))  # 1 − |cos|, sign-blind
    np.testing.assert_array_equal(d2["oja_angle"], d["oja_angle"])
    d3 = trackers_data(_with_checks(record, lambda c: {"theta": 2.0 * c.theta}))
    np.testing.assert_allclose(d3["exin_lam_rel"], np.asarray(d["exin_lam_rel"]) / 2.0, rtol=1e-15)


def _thin_records(record: RunRecord) -> dict[str, RunRecord]:
    lo = record.losses
    return {
        "no events": replace(record, events=()),
        "one check": replace(record, checks=record.checks[-1:], events=()),
        "no checks": replace(record, checks=(), events=()),
        "births without checks": replace(record, checks=()),
        "non-finite loss": replace(record, losses=replace(lo, L=(math.nan, math.inf, *lo.L[2:]))),
    }


def test_coupling_figures_plot_the_recorded_statistics(record: RunRecord) -> None:
    """R1(b), R2, R4: the plotted separation, entropy and correlation are the checks' values."""
    from ddcl_incrt.audit.figures import feedback_data, granularity_data, separation_data

    checks = tuple(
        replace(
            c,
            separation=2.0 * (c.separation or 1.0),
            grad_V_norm=float(len(record.checks) - i),
            attention_entropy={h: 0.25 for h in c.tau},
        )
        for i, c in enumerate(record.checks)
    )
    rec = replace(record, checks=checks)
    sep = separation_data(rec)
    np.testing.assert_array_equal(sep["S"], [c.separation for c in checks])
    gran = granularity_data(rec)
    np.testing.assert_array_equal(gran["entropy_last"], np.full(len(gran["head_ids"]), 0.25))
    fb = feedback_data(rec)
    np.testing.assert_array_equal(fb["grad_V"], [c.grad_V_norm for c in checks])
    flipped = replace(rec, checks=tuple(replace(c, separation=float(i + 1)) for i, c in enumerate(checks)))
    assert feedback_data(flipped)["r"] == pytest.approx(-1.0, rel=1e-12)


@pytest.mark.parametrize("case", ["no events", "one check", "no checks", "births without checks", "non-finite loss"])
def test_figures_draw_thin_records(record: RunRecord, case: str, tmp_path: Path) -> None:
    """No births, no events, one or no check: every figure still draws (warnings are errors here)."""
    thin = _thin_records(record)[case]
    for spec in FIGURES:
        path = spec.render(thin, tmp_path / f"{spec.name}.png")
        image = imread(path)
        assert image.ndim == 3
        assert image.shape[0] > 100
        assert image.shape[1] > 100
    if case != "non-finite loss":
        assert spectrum_at_births_data(thin)["spectra"] == []


# -- the report files -----------------------------------------------------------------------------


class _ReportParser(HTMLParser):
    """Collects from the HTML: claim rows (``data-claim``; per ``data-field`` its text and JSON value), the
    findings list, the images' sources, all text, and ``<body>``'s attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.claims: list[tuple[str, dict[str, tuple[str, Any]]]] = []
        self.findings: list[str] = []
        self.images: list[str] = []
        self.body: dict[str, str | None] = {}
        self.text: list[str] = []
        self._claim_row = False
        self._cell: tuple[str, Any] | None = None
        self._cell_text: list[str] = []
        self._findings = False
        self._li: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "tr":
            self._claim_row = a.get("data-claim") is not None
            if self._claim_row:
                self.claims.append((str(a["data-claim"]), {}))
        elif tag == "td" and self._claim_row and a.get("data-field"):
            self._cell = (str(a["data-field"]), json.loads(str(a["data-value"])))
            self._cell_text = []
        elif tag == "ul":
            self._findings = a.get("data-section") == "findings"
        elif tag == "li" and self._findings:
            self._li = []
        elif tag == "img":
            self.images.append(str(a.get("src")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            name, value = self._cell
            self.claims[-1][1][name] = ("".join(self._cell_text), value)
            self._cell = None
        elif tag == "tr":
            self._claim_row = False
        elif tag == "ul":
            self._findings = False
        elif tag == "li" and self._li is not None:
            self.findings.append("".join(self._li))
            self._li = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell_text.append(data)
        if self._li is not None:
            self._li.append(data)


def _parse_html(text: str) -> _ReportParser:
    p = _ReportParser()
    p.feed(text)
    p.close()
    return p


def _md_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _md_section(md: str, heading: str) -> list[str]:
    lines = md.splitlines()
    start = lines.index(f"## {heading}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return [line for line in lines[start:end] if line.strip()]


def _md_rendered(text: str) -> str:
    """A line of Markdown as it reads rendered: code spans as their content, escapes undone elsewhere."""
    parts = re.split(r"(`+)(.+?)(?<!`)\1(?!`)", text)
    out = []
    for i in range(0, len(parts), 3):
        out.append(_md_unescape(parts[i]))
        if i + 2 < len(parts):
            out.append(parts[i + 2].replace("\\|", "|"))
    return "".join(out)


def _md_table(lines: list[str]) -> list[list[str]]:
    rows = [line for line in lines if line.startswith("|")][2:]  # header and separator
    return [[_md_rendered(c.strip()) for c in re.split(r"(?<!\\)\|", r.strip()[1:-1])] for r in rows]


def test_write_report_writes_every_file(report: dict[str, Path]) -> None:
    out = report["report.md"].parent
    expected = {f"figures/{n}.png" for n in FIGURE_NAMES} | {"report.md", "report.html", "summary.json", "record.json"}
    assert set(report) == expected
    for name, path in report.items():
        assert path == out / name
        assert path.is_file()
        assert path.stat().st_size > 0
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_summary_and_record_files_round_trip(
    report: dict[str, Path], record: RunRecord, summary: dict[str, Any]
) -> None:
    def no_constants(name: str) -> None:
        raise AssertionError(f"summary.json has the non-standard constant {name}")

    on_disk = json.loads(report["summary.json"].read_text(encoding="utf-8"), parse_constant=no_constants)
    assert on_disk == json.loads(summary_json(summary))
    assert on_disk["claims"] == summary["claims"]
    assert RunRecord.load(report["record.json"]).architecture == record.architecture


def test_summary_json_writes_non_finite_floats_as_null() -> None:
    text = summary_json({"a": math.inf, "b": [1.0, math.nan, {"c": -math.inf}], "d": 2})
    assert json.loads(text) == {"a": None, "b": [1.0, None, {"c": None}], "d": 2}


def test_html_is_self_contained_with_one_image_per_figure(report: dict[str, Path]) -> None:
    text = report["report.html"].read_text(encoding="utf-8")
    assert "http://" not in text
    assert "https://" not in text
    parsed = _parse_html(text)
    assert len(parsed.images) == len(FIGURES)
    for src, name in zip(parsed.images, FIGURE_NAMES, strict=True):
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix) :]) == report[f"figures/{name}.png"].read_bytes()


def test_markdown_links_every_figure_with_its_caption(report: dict[str, Path]) -> None:
    md = report["report.md"].read_text(encoding="utf-8")
    for spec in FIGURES:
        links = re.findall(rf"!\[((?:[^\]\\]|\\.)*)\]\(figures/{spec.name}\.png\)", md)
        assert len(links) == 1, spec.name
        assert spec.caption in _md_unescape(links[0])


def test_findings_come_first_and_match(report: dict[str, Path], summary: dict[str, Any]) -> None:
    md = report["report.md"].read_text(encoding="utf-8")
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:2] == ["## Verdict on the papers' claims", "## Findings"]
    assert summary["findings"], "the fixture run has findings (the prototype collapse)"
    md_findings = [_md_unescape(line[2:]) for line in _md_section(md, "Findings") if line.startswith("- ")]
    html_findings = _parse_html(report["report.html"].read_text(encoding="utf-8")).findings
    assert md_findings == html_findings == summary["findings"]


def test_a_quiet_run_says_none(record: RunRecord, summary: dict[str, Any], tmp_path: Path) -> None:
    """No findings and no events are said to be none; with no claim "not implemented" there is no note."""
    claims = [{**c, "status": "held"} for c in summary["claims"]]
    quiet = {**summary, "findings": [], "events": [], "claims": claims}
    files = write_report(tmp_path, replace(record, events=()), quiet)
    md = files["report.md"].read_text(encoding="utf-8")
    html_text = files["report.html"].read_text(encoding="utf-8")
    parsed = _parse_html(html_text)
    assert "Findings: none" in " ".join(_md_section(md, "Findings"))
    assert "Findings: none" in "".join(parsed.text)
    assert parsed.findings == []
    assert "Events: none" in md
    assert "Events: none" in html_text
    assert "Not yet implemented" not in md
    assert "Not yet implemented" not in html_text


def test_claim_tables_match_summary_and_registry(report: dict[str, Path]) -> None:
    summary = json.loads(report["summary.json"].read_text(encoding="utf-8"))
    parsed = _parse_html(report["report.html"].read_text(encoding="utf-8"))
    fields = [f for f, _ in CLAIM_COLUMNS]
    assert [cid for cid, _ in parsed.claims] == list(REGISTRY) == [c["claim_id"] for c in summary["claims"]]
    for (cid, cells), row in zip(parsed.claims, summary["claims"], strict=True):
        assert list(cells) == fields
        assert {f: cells[f][1] for f in fields} == {f: row[f] for f in fields}
        assert cells["label"][1] == REGISTRY[cid].label.value
        assert cells["title"][1] == REGISTRY[cid].title
    md_rows = _md_table(_md_section(report["report.md"].read_text(encoding="utf-8"), "Claims"))
    html_rows = [[cells[f][0] for f in fields] for _, cells in parsed.claims]
    assert md_rows == html_rows


def test_the_verdict_table_comes_first_with_one_row_per_sentence_of_the_abstracts(report: dict[str, Path]) -> None:
    summary = json.loads(report["summary.json"].read_text(encoding="utf-8"))
    verdicts = summary["verdicts"]
    assert [v["sentence"] for v in verdicts] == [a.sentence for a in ABSTRACT_CLAIMS]
    assert all(set(v["claims"]) <= set(REGISTRY) and v["verdict"] for v in verdicts)
    md_rows = _md_table(_md_section(report["report.md"].read_text(encoding="utf-8"), "Verdict on the papers' claims"))
    assert [row[-1] for row in md_rows] == [v["verdict"] for v in verdicts]
    # the run's D4 row is the run's: its not-promised checks are named in the "this run" column
    d4 = {r["claim_id"]: r for r in summary["claims"]}["D4"]
    spread = verdicts[0]
    if d4["unpromised"]:
        assert f"{d4['unpromised']} not promised" in spread["this_run"]
        assert spread["verdict"].startswith("Not shown by this run")


def test_not_implemented_note_follows_the_claim_statuses(summary: dict[str, Any], report: dict[str, Path]) -> None:
    missing = [c["claim_id"] for c in summary["claims"] if c["status"] == NOT_IMPLEMENTED]
    md = report["report.md"].read_text(encoding="utf-8")
    html_text = report["report.html"].read_text(encoding="utf-8")
    if not missing:  # every claim implemented: no note (also checked on a made-up summary above)
        assert "Not yet implemented" not in md
        return
    note = f"Not yet implemented as registry claims: {', '.join(missing)}."
    assert note in md
    assert note in html_text


# -- rendered by a real browser -------------------------------------------------------------------


def test_chromium_renders_the_report(report: dict[str, Path], tmp_path: Path) -> None:
    page = report["report.html"].resolve().as_uri()
    shot = tmp_path / "shot.png"
    run = headless_chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,2000", page)
    assert shot.is_file(), f"no screenshot (rc {run.returncode}): {run.stderr[-2000:]}"
    pixels = np.asarray(imread(shot), dtype=np.float64)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.05, "the screenshot is blank"
    not_white = np.mean(np.any(pixels < 0.9, axis=-1))
    assert not_white > 0.02, f"only {not_white:.1%} of the pixels are not white"

    dom = headless_chromium(tmp_path / "profile", "--dump-dom", "--virtual-time-budget=5000", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = _parse_html(dom.stdout).body
    n = str(len(FIGURES))
    assert body.get("data-images-total") == n, f"body attributes: {body}"
    assert body.get("data-images-loaded") == n, f"body attributes: {body}"


def test_the_report_states_every_claim_and_its_hypotheses(report: dict[str, Path]) -> None:
    md = report["report.md"].read_text(encoding="utf-8")
    html_text = _parse_html(report["report.html"].read_text(encoding="utf-8"))
    text = "".join(html_text.text)
    for cid, claim in REGISTRY.items():
        for h in claim.hypotheses:
            assert f"{h.name}: {h.statement}" in text, (cid, h.name)
        assert claim.statement[:60] in text, cid
        assert f"{cid} {claim.title} ({claim.label.value})" in _md_unescape(md), cid
