"""The audit report: ``report.md`` and a self-contained ``report.html`` with the same content, the figures,
``summary.json`` and ``record.json``.

The report is built once as a list of blocks (headings, paragraphs, lists, tables, figures) from the
``summary.json`` document (:func:`ddcl_incrt.audit.summary.audit_summary`) and the figures
(:data:`ddcl_incrt.audit.figures.FIGURES`), then rendered twice, to Markdown and to HTML, so the two
cannot say different things. Findings come first, in plain words; the claim table has exactly the
rows of the summary, in order. The HTML needs nothing outside itself (inline CSS, the PNGs as
``data:`` URIs, no external address); a tiny inline script records on ``load`` how many images
decoded (``data-images-loaded`` / ``data-images-total`` on ``<body>``), which a headless-browser
test reads. Text between backticks is a code span in both (``<code>`` in the HTML); tables are
wrapped so that long cells break (at underscores and slashes first) rather than widen the page.
Claim rows carry ``data-claim`` and their cells ``data-field`` and ``data-value`` (the
exact JSON value) so a test can compare the table with ``summary.json``. Every file is written
atomically.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ddcl_incrt.audit.figures import FIGURES
from ddcl_incrt.audit.studies import StudySection
from ddcl_incrt.audit.summary import correlation_text
from training.files import write_atomic
from training.record import RunRecord

# (field of a summary claim row, column header), in table order.
CLAIM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("claim_id", "claim"),
    ("title", "title"),
    ("label", "label"),
    ("checks", "checks"),
    ("certified", "certified"),
    ("uncertified", "uncertified"),
    ("violations", "violated"),
    ("unpromised", "not promised"),
    ("failed_unpromised", "failed where not promised"),
    ("failed_hypotheses", "hypotheses that failed"),
    ("first_unpromised_step", "first not promised at step"),
    ("tightest", "tightest (value/bound)"),
    ("tightest_check", "tightest check"),
    ("status", "status"),
)
VERDICT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("sentence", "the papers claim"),
    ("claims", "formalised by"),
    ("proved", "what is proved (hypotheses)"),
    ("this_run", "this run"),
    ("studies", "the studies found"),
    ("verdict", "verdict"),
)
QUICK_NOTE = (
    "This is a quick run (--quick: 300 steps, a check every 25 steps, dwell T_d = 50, patience T_prune = 2; "
    "the default run has 1500, 50, 200 and 5). It checks every live claim and has births and prunes, so a "
    "violation or a failed hypothesis here is real; but its architecture, its accuracy and the coupling "
    "measurements (R1(b), R2, R4, over a dozen checks) are not the default run's and cannot stand for them, "
    "a head prune (G5 at a prune) needs a head below φ_g for T_prune checks, which a run this short rarely "
    "has, and the verdicts read the same rules on less evidence."
)
ELSEWHERE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("claim_id", "claim"),
    ("steps", "sympy steps"),
    ("proved", "proved"),
    ("failed_steps", "failed steps"),
    ("counterexamples", "counterexamples"),
    ("hold_up", "hold up"),
    ("failed_falsifiers", "did not hold up"),
    ("no_falsifier", "hypotheses with a reason none can exist"),
)
ELSEWHERE_HEADING = "Proofs and falsifiers (run with this report; they do not depend on this run's state)"
ELSEWHERE_LEGEND = (
    "Run with this report (ddcl-incrt prove and ddcl-incrt falsify print the details). sympy steps: the "
    "derivation steps of the claim's proof, each checked symbolically and cross-checked numerically against "
    "the reference code; proved: those that passed. counterexamples: one per hypothesis of a proved claim, "
    "built with that hypothesis false and the others true; hold up: the claim's conclusion predicate is false "
    "on it, as the falsifier reported (so the hypothesis is needed). The registry states why no counterexample "
    "can exist for the hypotheses in the last column."
)
VERDICT_LEGEND = (
    "One row per claim of the papers' abstracts. formalised by: the registry's claims (their rows are in the "
    "claim table below). what is proved: the theorem and the hypotheses it needs. this run: each claim's status "
    "and counts, with the hypotheses that failed on the live state (where one failed, nothing was promised). "
    "the studies found: the studies of many runs, in docs/studies/, which report every seed. verdict: one line, "
    "from this run and the studies; 'not tested' where neither tests the sentence."
)
CLAIM_LEGEND = (
    "Each claim's hypotheses (listed with its statement below) are evaluated with the registry's predicates "
    "on the live state at every check of the claim. checks: every check of the claim recorded in this run; "
    "they split into the next four columns. certified: held, where every hypothesis held, with a bound that "
    "could have failed. uncertified: held, where every hypothesis held, with a bound that could not "
    "(infinite, or vacuous: any input satisfies it, e.g. sin∠ ≤ 1, or it is too wide to decide what it "
    "protects, e.g. an eigenvalue bound wider than the eigenvalue's distance to θ); they are not evidence. "
    "violated: failed where every hypothesis held — the claim broke its promise (exit code 1 for a proved "
    "claim). not promised: made where a hypothesis failed, so the claim promised nothing; failed where not "
    "promised: of those, the ones whose conclusion failed anyway (not a violation); hypotheses that failed "
    "and the first step it happened at. tightest: the largest fraction value/bound that a certified, promised"
    " check used (1 is at its bound), and that check's name; — when only exact checks (bound 0) were "
    "certified. status: held needs at least one certified check and no violation; not promised: every check "
    "was made where a hypothesis failed."
)
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("step", "step"),
    ("kind", "kind"),
    ("unit", "unit"),
    ("reason", "reason"),
)
EVENT_LEGEND = (
    "step: the training step of the growth check that made the event. kind: birth (a head added), head_prune, "
    "prototype_prune, or a near-tie (a decision statistic within rounding of its threshold, recorded, not acted "
    "on differently). unit: the head or prototype it concerns. reason: the comparison that decided it, with "
    "the statistic, the threshold and their margin."
)
CONFIG_COLUMNS: tuple[tuple[str, str], ...] = (("group", "group"), ("setting", "setting"), ("value", "value"))
CONFIG_LEGEND = (
    "layer: the layer's sizes (input width d_in, model width d, query/key width d_k, value width d_v, sequence "
    "length, K_max prototypes, classes), the prototype temperature T_P, the weight λ_q of L_q in the loss and "
    "the initial log-temperature s_init of the heads. training: the optimiser and its learning rates by group, "
    "the schedule (a growth check every check_every steps on a probe of probe_size sequences; evaluations every "
    "eval_every), θ's calibration (c_θ times the median ‖A_res‖_F of calibration_probes probes, unless θ is "
    "given), the dwell T_d, the patience T_prune, the mass floor ε_K, the trackers' steps per check. growth: the "
    "growth rule's θ and φ_g as used (calibrated), its dwell, patience, floors and caps."
)
NOT_IMPLEMENTED = "not implemented"


# -- the document, as blocks --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Heading:
    level: int
    text: str


@dataclass(frozen=True)
class _Paragraph:
    text: str
    section: str = ""  # data-section of the HTML paragraph (a note to set apart), or none


@dataclass(frozen=True)
class _Bullets:
    items: tuple[str, ...]
    section: str  # data-section of the HTML list


@dataclass(frozen=True)
class _Table:
    """``rows``: per row its key (``data-<key_attr>``) and per column ``(shown text, exact JSON value)``."""

    columns: tuple[tuple[str, str], ...]
    rows: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    key_attr: str
    section: str


@dataclass(frozen=True)
class _Image:
    name: str
    caption: str
    png: bytes = field(repr=False)


_Block = _Heading | _Paragraph | _Bullets | _Table | _Image


def _fmt(value: Any) -> str:
    """A cell's text: numbers short, lists comma-separated, missing values as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value) if value else "—"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()) if value else "—"
    return str(value)


def _table(
    columns: tuple[tuple[str, str], ...],
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str | None,
    key_attr: str,
    section: str,
) -> _Table:
    """A table of ``rows`` (summary dictionaries); each row is keyed by its ``key`` field, or its index."""
    out = []
    for i, row in enumerate(rows):
        cells = tuple((_fmt(row[f]), row[f]) for f, _ in columns)
        out.append((str(i) if key is None else str(row[key]), cells))
    return _Table(columns, tuple(out), key_attr=key_attr, section=section)


def _run_line(s: Mapping[str, Any]) -> str:
    return (
        f"Dataset {s['dataset']} · engine {s['engine']} · {s['steps']} steps · seed {s['seed']} · "
        f"wall time {float(s['wall_time_s']):.1f} s · train accuracy {float(s['train_accuracy']):.3f} · "
        f"test accuracy {float(s['test_accuracy']):.3f} · θ = {float(s['theta']):.4g} · "
        f"φ_g = {float(s['phi_g']):.4g} · {plural(s['violations'], 'violated check')} · exit code {s['exit_code']}"
        + _variants_note(s)
    )


def _variants_note(s: Mapping[str, Any]) -> str:
    """`` · growth variants …`` when the run used named variants of the growth rule (nothing for the paper's)."""
    variants = s.get("configuration", {}).get("growth", {}).get("variants") or ()
    return f" · growth variants {', '.join(variants)}" if variants else ""


def _statement_line(s: Mapping[str, Any]) -> str:
    hyps = "; ".join(f"{h['name']}: {h['statement']}" for h in s["hypotheses"]) or "none"
    return f"{s['claim_id']} {s['title']} ({s['label']}): {s['statement']} Hypotheses: {hyps}."


def plural(count: Any, noun: str) -> str:
    """``"1 head"``, ``"2 heads"``."""
    return f"{count} {noun}" if int(count) == 1 else f"{count} {noun}s"


def _architecture_lines(a: Mapping[str, Any]) -> tuple[str, ...]:
    return (
        f"{plural(a['n_heads'], 'head')} (ids {_fmt(list(a['head_ids']))}), captured rank {a['captured_rank']}",
        f"{plural(a['n_prototypes'], 'prototype')} (ids {_fmt(list(a['prototype_ids']))})",
        f"{plural(a['births'], 'birth')}, {plural(a['head_prunes'], 'head prune')}, "
        f"{plural(a['prototype_prunes'], 'prototype prune')}",
    )


def _coupling_lines(c: Mapping[str, Any]) -> tuple[str, ...]:
    r1, r2, r4 = c["R1"], c["R2"], c["R4"]
    around = "; ".join(
        f"birth at {a['birth_step']}: S {_fmt(a['S_at_birth'])} → {_fmt(a['S_before_next_birth'])}"
        for a in r1["around_births"]
    )
    heads = "; ".join(
        f"head {h['head_id']} (born {h['birth_step']}, age {h['age']}): τ {_fmt(h['tau_last'])}, entropy "
        f"{_fmt(h['attention_entropy_last'])}"
        for h in r2["heads_by_birth_order"]
    )
    return (
        f"R1(b) correlation of separation S with λ_max(A_res) over the checks: {_fmt(r1['corr_separation_lam_max'])}",
        f"R1(b) separation at each birth and before the next one: {around or 'no births'}",
        f"R2 by birth order (at each head's last check): {heads or 'no heads'}",
        f"R2 Var(log τ_h): {_fmt(r2['var_log_tau_first'])} at the first check → "
        f"{_fmt(r2['var_log_tau_last'])} at the last",
        f"R2 against age (steps alive at the head's last check): τ_h {correlation_text(r2['tau_vs_age'])}, "
        f"attention entropy {correlation_text(r2['entropy_vs_age'])}",
        f"R4 correlation of separation with ‖∇_P V‖ over {r4['n_checks']} checks: "
        f"{_fmt(r4['corr_separation_grad_V'])} (DDCL paper: {r4['paper']})",
        *(f"R4 {g['regime']}: {correlation_text(g)}" for g in r4["by_regime"]),
    )


def _blocks(summary: Mapping[str, Any], images: Sequence[_Image], studies: Sequence[StudySection] = ()) -> list[_Block]:
    claims: list[Mapping[str, Any]] = list(summary["claims"])
    findings = tuple(str(f) for f in summary["findings"])
    blocks: list[_Block] = [
        _Heading(1, f"DDCL-INCRT audit: {summary['dataset']}, {summary['engine']}"),
        _Paragraph(_run_line(summary)),
    ]
    if summary.get("quick"):
        blocks.append(_Paragraph(QUICK_NOTE))
    verdicts: list[Mapping[str, Any]] = list(summary.get("verdicts", ()))
    if verdicts:
        blocks += [
            _Heading(2, "Verdict on the papers' claims"),
            _table(VERDICT_COLUMNS, verdicts, key=None, key_attr="verdict", section="verdicts"),
            _Paragraph(VERDICT_LEGEND),
        ]
    blocks.append(_Heading(2, "Findings"))
    if findings:
        blocks.append(_Bullets(findings, "findings"))
    else:
        blocks.append(_Paragraph("Findings: none. No check for a disagreement with the papers' claims fired."))
    blocks += [_Heading(2, "Claims"), _table(CLAIM_COLUMNS, claims, key="claim_id", key_attr="claim", section="claims")]
    blocks.append(_Paragraph(CLAIM_LEGEND))
    for line in summary.get("not_live", ()):
        blocks.append(_Paragraph(f"Not checked live, and why: {line}"))
    statements = summary.get("statements")
    if statements:
        blocks += [
            _Heading(3, "What each claim states (the registry; docs/spec.md §4, proofs in docs/theory.md)"),
            _Bullets(tuple(_statement_line(s) for s in statements), "statements"),
        ]
    missing = [str(c["claim_id"]) for c in claims if c["status"] == NOT_IMPLEMENTED]
    if missing:
        blocks.append(
            _Paragraph(
                f"Not yet implemented as registry claims: {', '.join(missing)}. No pass or fail is judged for "
                "them; the measured statistics of R1(b), R2 and R4 follow, labelled as measurements."
            )
        )
    blocks.append(_Heading(2, ELSEWHERE_HEADING))
    elsewhere = summary.get("checked_elsewhere")
    if elsewhere:
        blocks += [
            _table(ELSEWHERE_COLUMNS, list(elsewhere), key="claim_id", key_attr="proof", section="elsewhere"),
            _Paragraph(ELSEWHERE_LEGEND),
        ]
    else:
        blocks.append(
            _Paragraph(
                "Not run with this report (--quick or --skip-proofs): `ddcl-incrt prove` runs the sympy steps and "
                "`ddcl-incrt falsify` the falsifiers."
            )
        )
    coupling = summary.get("coupling")
    if coupling:
        blocks += [_Heading(2, "Coupling measurements (R1(b), R2, R4; measured, never pass/fail)")]
        blocks.append(_Bullets(_coupling_lines(coupling), "coupling"))
    blocks += [
        _Heading(2, "Derived architecture"),
        _Bullets(_architecture_lines(summary["architecture"]), "architecture"),
    ]
    blocks.append(_Heading(2, "Events"))
    events: list[Mapping[str, Any]] = list(summary["events"])
    if events:
        blocks.append(_table(EVENT_COLUMNS, events, key=None, key_attr="event", section="events"))
        blocks.append(_Paragraph(EVENT_LEGEND))
    else:
        blocks.append(_Paragraph("Events: none (no birth, prune or near-tie in this run)."))
    config = summary.get("configuration")
    if config:
        rows = [
            {"group": group, "setting": name, "value": value}
            for group, settings in config.items()
            for name, value in settings.items()
        ]
        blocks += [
            _Heading(2, "Configuration"),
            _table(CONFIG_COLUMNS, rows, key=None, key_attr="setting", section="configuration"),
            _Paragraph(CONFIG_LEGEND),
        ]
    prov = summary.get("provenance")
    if prov:
        blocks += [
            _Heading(2, "Provenance"),
            _Bullets(tuple(f"{k}: {_fmt(v)}" for k, v in prov.items()), "provenance"),
        ]
    blocks.append(_Heading(2, "Figures"))
    blocks.extend(images)
    if studies:
        blocks.append(_Heading(2, "Studies (measured; their protocols are in docs/studies/)"))
        for study in studies:
            blocks.append(_Heading(3, study.title))
            blocks.extend(_study_blocks(study))
    return blocks


def _study_blocks(study: StudySection) -> list[_Block]:
    """A study's Markdown as report blocks: a note first where its run is smaller than its protocol's,
    a ``Protocol:`` line where the study wrote none, headings one level below the study's, pipe tables
    as tables, other lines as paragraphs (bold marks dropped, code spans kept), then its figure."""
    out: list[_Block] = []
    if study.scale_note:
        out.append(_Paragraph(study.scale_note, section="scale-note"))
    lines = study.markdown.splitlines()
    if study.protocol and not any(_plain(line).strip().startswith("Protocol:") for line in lines):
        out.append(_Paragraph(f"Protocol: `{study.protocol}`."))
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):  # the header's separator row
                    rows.append(tuple(_plain(c) for c in cells))
                i += 1
            header, body = rows[0], rows[1:]
            columns = tuple((h, h) for h in header)
            out.append(
                _Table(
                    columns,
                    tuple((str(k), tuple((c, c) for c in r)) for k, r in enumerate(body)),
                    key_attr="row",
                    section=f"study-{study.name}",
                )
            )
            continue
        heading = re.match(r"^(#+)\s+(.*)$", line)
        if heading:
            out.append(_Heading(min(4, 3 + len(heading.group(1)) - 1), _plain(heading.group(2))))
        elif line:
            out.append(_Paragraph(_plain(line)))
        i += 1
    if study.png is not None:
        out.append(_Image(f"study-{study.name}", study.title, study.png))
    return out


def _plain(text: str) -> str:
    return text.replace("**", "")


# -- inline code spans ---------------------------------------------------------------------------------

# A code span: a run of backticks, the code, the same run (CommonMark's rule, without line endings).
_CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")


def _spans(text: str) -> list[tuple[bool, str]]:
    """``text`` cut into ``(is_code, part)``: the code spans (their content, one space of padding on each
    side stripped where both are there) and the text around them; an unmatched backtick is text."""
    out: list[tuple[bool, str]] = []
    pos = 0
    for m in _CODE_SPAN.finditer(text):
        if m.start() > pos:
            out.append((False, text[pos : m.start()]))
        code = m.group(2)
        if len(code) > 2 and code.startswith(" ") and code.endswith(" ") and code.strip():
            code = code[1:-1]
        out.append((True, code))
        pos = m.end()
    if pos < len(text):
        out.append((False, text[pos:]))
    return out


def _md_code(code: str, *, in_table: bool) -> str:
    """``code`` as a Markdown code span: fenced by one more backtick than its longest run of them, padded
    with a space where it starts or ends with one; in a table a ``|`` is escaped (GFM reads it first)."""
    runs = [len(r) for r in re.findall(r"`+", code)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if code.startswith("`") or code.endswith("`") else ""
    code = code.replace("\n", " ")
    if in_table:
        code = code.replace("|", "\\|")
    return f"{fence}{pad}{code}{pad}{fence}"


# -- Markdown -----------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|])")


def _md_text(text: str) -> str:
    """Escape the characters that are markup inside a line (intraword ``_`` is not, in CommonMark)."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def _md(text: str, *, in_table: bool = False) -> str:
    """``text`` as one line of Markdown: its code spans as code spans, the rest escaped."""
    return "".join(_md_code(part, in_table=in_table) if code else _md_text(part) for code, part in _spans(text))


def _markdown(blocks: Sequence[_Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, _Heading):
            out.append(f"{'#' * b.level} {_md(b.text)}")
        elif isinstance(b, _Paragraph):
            out.append(_md(b.text))
        elif isinstance(b, _Bullets):
            out.append("\n".join(f"- {_md(item)}" for item in b.items))
        elif isinstance(b, _Table):
            head = " | ".join(_md(h, in_table=True) for _, h in b.columns)
            lines = [f"| {head} |", "|" + "---|" * len(b.columns)]
            lines += ["| " + " | ".join(_md(text, in_table=True) for text, _ in cells) + " |" for _, cells in b.rows]
            out.append("\n".join(lines))
        else:
            out.append(f"![{_md(b.caption)}]({figure_file(b.name)})\n\n*{_md(b.caption)}*")
    return "\n\n".join(out) + "\n"


# -- HTML -----------------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 90rem;
       padding: 0 1rem; color: #1b1b1b; background: #fff; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
div.table { max-width: 100%; overflow-x: auto; margin: .5rem 0 1rem; }
table { border-collapse: collapse; width: 100%; max-width: 100%; font-size: .9rem; }
th, td { border: 1px solid #ccc; padding: .25rem .35rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; overflow-wrap: break-word; hyphens: auto; }
td { overflow-wrap: break-word; }
td[data-short] { white-space: nowrap; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .9em;
       background: #f3f3f3; border-radius: 3px; padding: 0 .2em; overflow-wrap: anywhere; }
table[data-section="claims"] { font-size: .78rem; }
td[data-field="failed_hypotheses"], td[data-field="tightest_check"], td[data-field="status"] { min-width: 5rem; }
p[data-section="scale-note"] { background: #fff4d6; border-left: 4px solid #c98a00; padding: .4rem .6rem; }
tr[data-status="violated"] td { background: #fde2e2; }
tr[data-status="not promised"] td[data-field="status"] { color: #8a5a00; font-weight: 600; }
tr[data-status="held"] td[data-field="status"] { color: #126b12; font-weight: 600; }
ul[data-section="findings"] li { margin-bottom: .35rem; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: .9rem; color: #444; margin-top: .3rem; }
""".strip()

_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (im) { return im.complete && im.naturalWidth > 0; });
  document.body.dataset.imagesLoaded = String(ok.length);
  document.body.dataset.imagesTotal = String(imgs.length);
});
""".strip()


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _inline(text: str, *, breaks: bool = False) -> str:
    """``text`` as HTML: escaped, its code spans as ``<code>``; ``breaks``: a line may break after an
    underscore or a slash (``<wbr>``), where a long identifier in a table cell would otherwise widen it."""

    def part(t: str) -> str:
        e = _h(t)
        return re.sub(r"([_/])", r"\1<wbr>", e) if breaks else e

    return "".join(f"<code>{part(t)}</code>" if code else part(t) for code, t in _spans(text))


# A cell that is a number, a count or a range (no words) and this short never wraps (its column is at
# least that wide); every other cell may break, so that no table is wider than the page.
SHORT_CELL = 16
_NUMERIC = re.compile(r"[-+−–—\d\s.,:/%±×()eE]*")


def _unbreakable(text: str) -> bool:
    return len(text) <= SHORT_CELL and _NUMERIC.fullmatch(text) is not None


def _html_table(b: _Table) -> str:
    head = "".join(f'<th data-field="{_h(f)}">{_inline(h, breaks=True)}</th>' for f, h in b.columns)
    rows = []
    for key, cells in b.rows:
        status = dict(zip((f for f, _ in b.columns), (v for _, v in cells), strict=True)).get("status")
        attrs = f' data-{b.key_attr}="{_h(key)}"' + (f' data-status="{_h(str(status))}"' if status is not None else "")
        tds = "".join(
            f'<td data-field="{_h(f)}" data-value="{_h(json.dumps(_json_safe(v), ensure_ascii=False))}"'
            f"{' data-short' if _unbreakable(text) else ''}>{_inline(text, breaks=True)}</td>"
            for (f, _), (text, v) in zip(b.columns, cells, strict=True)
        )
        rows.append(f"<tr{attrs}>{tds}</tr>")
    body = "\n".join(rows)
    return (
        f'<div class="table"><table data-section="{_h(b.section)}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table></div>"
    )


def _html(blocks: Sequence[_Block], title: str) -> str:
    parts: list[str] = []
    for b in blocks:
        if isinstance(b, _Heading):
            parts.append(f"<h{b.level}>{_inline(b.text)}</h{b.level}>")
        elif isinstance(b, _Paragraph):
            attrs = f' data-section="{_h(b.section)}"' if b.section else ""
            parts.append(f"<p{attrs}>{_inline(b.text)}</p>")
        elif isinstance(b, _Bullets):
            items = "".join(f"<li>{_inline(item)}</li>" for item in b.items)
            parts.append(f'<ul data-section="{_h(b.section)}">{items}</ul>')
        elif isinstance(b, _Table):
            parts.append(_html_table(b))
        else:
            src = "data:image/png;base64," + base64.b64encode(b.png).decode("ascii")
            parts.append(
                f'<figure data-figure="{_h(b.name)}"><img src="{src}" alt="{_h(b.caption)}">'
                f"<figcaption>{_inline(b.caption)}</figcaption></figure>"
            )
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_h(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n{body}\n"
        f"<script>\n{_SCRIPT}\n</script>\n</body>\n</html>\n"
    )


# -- files ----------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN or infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def summary_json(summary: Mapping[str, Any]) -> str:
    """The ``summary.json`` text: indented, non-finite floats as ``null`` (strict JSON, ``allow_nan=False``)."""
    return json.dumps(_json_safe(summary), indent=1, allow_nan=False, ensure_ascii=False) + "\n"


TEXT_FILES: tuple[str, ...] = ("report.md", "report.html", "summary.json", "record.json")


def figure_file(name: str) -> str:
    """Where :func:`write_report` writes the figure ``name`` (a :data:`FIGURES` entry's, or ``study-<name>``)."""
    return f"figures/{name}.png"


def report_files(studies: Sequence[StudySection] = ()) -> tuple[str, ...]:
    """Every file :func:`write_report` writes with these studies, relative to its folder: what the audit
    checks in ``--out`` before it trains."""
    studies_png = (figure_file(f"study-{st.name}") for st in studies if st.png is not None)
    return (*(figure_file(spec.name) for spec in FIGURES), *studies_png, *TEXT_FILES)


def write_report(
    out_dir: Path, record: RunRecord, summary: dict[str, Any], studies: Sequence[StudySection] = ()
) -> dict[str, Path]:
    """Write the audit's report files into ``out_dir`` (created if needed) and return them by name.

    Writes ``figures/<name>.png`` for every figure of :data:`~ddcl_incrt.audit.figures.FIGURES` (drawn
    from ``record``), ``report.md`` and ``report.html`` (the same blocks, from ``summary`` and the
    figures), ``summary.json`` (:func:`summary_json`) and ``record.json`` (:meth:`RunRecord.save`),
    each atomically; ``studies`` (:mod:`ddcl_incrt.audit.studies`) become sections after the figures.
    The keys of the result are the paths relative to ``out_dir``
    (``"figures/loss.png"``, ``"report.md"``, …).
    """
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    images = []
    for spec in FIGURES:
        name = figure_file(spec.name)
        written[name] = path = spec.render(record, out_dir / name)
        images.append(_Image(spec.name, f"{spec.title}. {spec.caption}", path.read_bytes()))
    for study in studies:  # the Markdown links every figure under figures/
        if study.png is not None:
            name = figure_file(f"study-{study.name}")
            written[name] = write_atomic(out_dir / name, study.png)
    blocks = _blocks(summary, images, studies)
    title = f"DDCL-INCRT audit: {summary['dataset']} ({summary['engine']})"
    texts = {
        "report.md": _markdown(blocks),
        "report.html": _html(blocks, title),
        "summary.json": summary_json(summary),
    }
    for name, text in texts.items():
        written[name] = write_atomic(out_dir / name, text.encode("utf-8"))
    written["record.json"] = record.save(out_dir / "record.json")
    return written


__all__ = [
    "CLAIM_COLUMNS",
    "CLAIM_LEGEND",
    "CONFIG_COLUMNS",
    "CONFIG_LEGEND",
    "ELSEWHERE_COLUMNS",
    "ELSEWHERE_HEADING",
    "ELSEWHERE_LEGEND",
    "EVENT_COLUMNS",
    "EVENT_LEGEND",
    "NOT_IMPLEMENTED",
    "QUICK_NOTE",
    "SHORT_CELL",
    "TEXT_FILES",
    "VERDICT_COLUMNS",
    "VERDICT_LEGEND",
    "figure_file",
    "plural",
    "report_files",
    "summary_json",
    "write_report",
]
