"""``ddcl-incrt audit``: train on real data with every implemented claim checked live, then report.

The default is the digits sequences (scikit-learn's bundled ``load_digits``, 8 row-tokens of 8
features) with the configuration of ``docs/runs.md``, on the accelerated engine in float64 when torch
is installed and on the reference engine otherwise. Every invariant the trainer knows is checked as
it runs, where the registry's ``Claim.live`` says: D1 at every step; D2, D3 (one frozen-encoder
prototype step) and D4 on the probe at every check, G5 at every check for every head as if it were
pruned, and G6; G1, R1(a), and G2–G4 on that check's ``A_res`` held fixed (the static operator they
speak about) at every birth; G5 at every head prune; D5 at every prototype prune. Each check records
which of its claim's hypotheses failed on the live state (:mod:`reference.claims.live`), so the report
separates violations from checks where nothing was promised. D6 is not checked live (the registry's
``Claim.not_live`` says why) and the report says so.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ddcl_incrt.audit.studies import load_study_sections
from ddcl_incrt.output_paths import check_output_dir, write_with_fallback
from reference.incrt.controller import GrowthVariant
from reference.model import LayerConfig
from reference.train_config import TrainConfig
from training.checkpoint import Checkpoint, CheckpointPolicy, latest_checkpoint, step_of
from training.configs import LAYERS, QUICK_TRAIN, TRAIN
from training.data import named_dataset
from training.record import RunRecord
from training.trainer import ProgressInfo, ReferenceEngine, resume, run

Dataset = Literal["digits", "planted"]
EngineName = Literal["auto", "reference", "accelerated"]


@dataclass(frozen=True)
class AuditOptions:
    """What the command line chooses; ``None`` means the default."""

    dataset: Dataset = "digits"
    steps: int | None = None
    seed: int = 0
    engine: EngineName = "auto"
    theta: float | None = None
    phi_g: float | None = None
    out: Path = Path("audit")
    quick: bool = False
    # Checkpoints go to out/checkpoints every that many steps (0: only when interrupted); resume
    # continues from a checkpoint file or the latest one in a folder.
    checkpoint_every: int = 500
    resume: Path | None = None
    studies: Path | None = None  # a folder of study results to add to the report (ddcl_incrt.audit.studies)
    # the sympy steps and falsifiers (ddcl-incrt prove / falsify, about 20 s) are embedded in the report
    # unless skipped; --quick skips them
    skip_proofs: bool = False
    # named variants of the growth rule (reference.incrt.controller.GROWTH_VARIANTS); () is the paper's rule
    growth_variants: tuple[GrowthVariant, ...] = ()


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def resolve_engine(engine: EngineName) -> Literal["reference", "accelerated"]:
    """``auto`` is the accelerated engine when torch is importable, else the reference."""
    if engine == "auto":
        return "accelerated" if torch_available() else "reference"
    if engine == "accelerated" and not torch_available():
        raise ValueError(
            "--engine accelerated needs PyTorch: pip install torch==2.13.0 (then pip install -e '.[torch]')"
        )
    return engine


def train_config(opts: AuditOptions) -> TrainConfig:
    base = QUICK_TRAIN if opts.quick else TRAIN
    steps = opts.steps if opts.steps is not None else base.steps
    batch = base.batch_size if opts.dataset == "digits" else 32
    cfg = replace(base, steps=steps, seed=opts.seed, batch_size=batch, theta=opts.theta, phi_g=opts.phi_g)
    return replace(cfg, check_invariants=True, growth_variants=opts.growth_variants)


@contextmanager
def progress_bar(console: Console, description: str, total: int) -> Iterator[Callable[[ProgressInfo], None]]:
    """A rich progress bar showing step, loss, heads, prototypes and the violations found so far; on a
    console that is not a terminal (a pipe, a log file), where rich draws the bar only once at the end,
    one plain line at every tenth of the run instead."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    live = console.is_terminal
    every = max(1, total // 10)
    t0 = time.perf_counter()
    with Progress(*columns, console=console, transient=False, disable=not live) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(p: ProgressInfo) -> None:
            shown = p.step % (10 if live else every) == 0 or p.step == p.steps
            if not shown:
                return
            lam = "—" if p.lam_max is None else f"{p.lam_max / p.theta:.2f}"
            info = f"L={p.L:.3f} heads={p.n_heads} K={p.n_prototypes} λmax/θ={lam} violations="
            if live:
                viol = f"[red]{p.violations}[/red]" if p.violations else "0"
                bar.update(task, completed=p.step, info=info + viol)
            else:
                elapsed = time.perf_counter() - t0
                line = f"{description}: step {p.step}/{p.steps} {info}{p.violations} {elapsed:.0f} s"
                console.print(line, markup=False, highlight=False)

        yield update


def run_training(opts: AuditOptions, console: Console) -> tuple[RunRecord, str]:
    """Train with the audit's configuration; returns the record and the engine's description."""
    engine = resolve_engine(opts.engine)
    data = named_dataset(opts.dataset, opts.seed)
    layer = LAYERS[opts.dataset]
    cfg = train_config(opts)
    rng = np.random.default_rng([opts.seed, 1])
    # also at the last step: an audit interrupted after training (proofs, report) resumes from it
    # without training again, instead of losing the finished run
    policy = CheckpointPolicy(
        opts.out / "checkpoints", every=opts.checkpoint_every, at_steps=frozenset({cfg.steps}), keep=2
    )
    desc = "reference (NumPy, float64)" if engine == "reference" else "accelerated (PyTorch, float64, eager, CPU)"
    chosen: Any  # ReferenceEngine or AcceleratedEngine (their states differ; run/resume are generic over it)
    if engine == "reference":
        chosen = ReferenceEngine()
    else:
        import torch

        from accelerated.trainer import AcceleratedEngine

        device = "cuda" if torch.cuda.is_available() else "cpu"
        desc = desc.replace("CPU", device.upper())
        chosen = AcceleratedEngine(torch.float64, device)
    checkpoint = None if opts.resume is None else _checkpoint_to_resume(opts.resume, layer, cfg)
    with progress_bar(console, f"{opts.dataset} · {engine}", cfg.steps) as update:
        if checkpoint is None:
            record = run(data, layer, cfg, rng=rng, engine=chosen, progress=update, checkpoints=policy)
        else:
            console.print(f"resuming from step {checkpoint.step} ({opts.resume})")
            record = resume(checkpoint, data, engine=chosen, progress=update, checkpoints=policy)
    meta: dict[str, Any] = {
        "command": "ddcl-incrt audit",
        "engine": desc,
        "seed": opts.seed,
        "train_rng": [opts.seed, 1],
        "provenance": provenance(desc),
    }
    return replace(record, meta=meta), desc


def provenance(engine: str) -> dict[str, Any]:
    """Where and with what a run was made: the package's version and git commit (None outside a checkout;
    ``dirty`` when the checkout has uncommitted changes), Python, NumPy and torch versions, the engine and
    its threads, the date (UTC) and the machine (its CPU model where the system says it)."""
    torch_version = threads = None
    if importlib.util.find_spec("torch") is not None and "PyTorch" in engine:
        import torch

        torch_version, threads = torch.__version__, torch.get_num_threads()
    try:
        version = importlib.metadata.version("ddcl-incrt")
    except importlib.metadata.PackageNotFoundError:
        version = None
    commit, dirty = _git_state(Path(__file__).resolve().parent)
    return {
        "package": version,
        "git_commit": commit,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_version,
        "engine": engine,
        "torch_threads": threads,
        "cpu_count": os.cpu_count(),
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.system()} {platform.machine()}, {_cpu_model()}",
    }


def _git_state(folder: Path) -> tuple[str | None, bool | None]:
    """The checkout's HEAD commit and whether it has uncommitted changes; (None, None) outside a checkout
    or without git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head, bool(status.strip())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU model unknown"


def _checkpoint_to_resume(path: Path, layer: LayerConfig, cfg: TrainConfig) -> Checkpoint:
    """The checkpoint at ``path`` (a file, or the latest in a folder), which must be of this audit's
    configuration: resuming continues the same run, it does not change it."""
    chosen = latest_checkpoint(path)
    checkpoint = Checkpoint.load(chosen)
    for name, mine, theirs in (("layer", layer, checkpoint.layer_config), ("training", cfg, checkpoint.train_config)):
        if mine != theirs:
            diff = [f.name for f in fields(mine) if getattr(mine, f.name) != getattr(theirs, f.name)]
            where = "" if chosen == path else f" ({chosen}, the newest intact checkpoint of {path})"
            raise ValueError(
                f"resume: the checkpoint{where} was written with another {name} configuration (differs in {diff}); "
                "give the options of the interrupted run, or the checkpoint file it named"
            )
    return checkpoint


def _file_identity(path: Path) -> tuple[int, int, int, int] | None:
    """What changes when ``path`` is written anew (device, inode, modification time, size); None if it
    is absent or cannot be looked at."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def _resumed_last_state(resume: Path | None, steps: int) -> Path | None:
    """The checkpoint ``--resume`` chooses, when it already holds the last step's state: such a run trains
    nothing and writes no checkpoint, so that file is where its state is. ``None`` otherwise, and when it
    cannot be chosen (run_training then reports why)."""
    if resume is None:
        return None
    try:
        chosen = latest_checkpoint(resume)
        return chosen if step_of(chosen) == steps else None
    except Exception:  # only a hint for an interrupt's line: the resume's own error is run_training's
        return None


def audit(opts: AuditOptions, console: Console) -> tuple[int, dict[str, Any], dict[str, Path]]:
    """Train, summarise, write the report; returns ``(exit code, summary, files written)``."""
    from ddcl_incrt.audit.report import report_files, write_report
    from ddcl_incrt.audit.summary import audit_summary, checked_elsewhere, elsewhere_findings
    from ddcl_incrt.claim_checks import falsifier_results, proof_steps

    # Before training, fail fast: the studies to include and the output folder (checkpoints go there
    # during the run, the report and every figure after it).
    studies = () if opts.studies is None else load_study_sections(opts.studies)
    check_output_dir(opts.out, "--out", files=report_files(studies), folders=("figures", "checkpoints"))
    steps = train_config(opts).steps
    final = CheckpointPolicy(opts.out / "checkpoints").path(steps)
    before = _file_identity(final)
    trained = False
    t0 = time.perf_counter()
    try:
        record, engine = run_training(opts, console)
        trained = True
        summary = audit_summary(record, engine=engine, wall_time_s=time.perf_counter() - t0)
        summary["studies"] = [{"name": st.name, "title": st.title} for st in studies]
        summary["quick"] = opts.quick
        summary["checked_elsewhere"] = None
        if not (opts.skip_proofs or opts.quick):
            doing = "running the sympy steps and the falsifiers (ddcl-incrt prove, falsify)"
            if not console.is_terminal:  # the status spinner below is drawn only on a terminal
                console.print(f"{doing}…", markup=False, highlight=False)
            with console.status(doing):
                summary["checked_elsewhere"] = checked_elsewhere(proof_steps(), falsifier_results())
            summary["findings"] += elsewhere_findings(summary["checked_elsewhere"])
        # a folder that became unwritable during the run: the report goes to a temporary folder, named in the error
        files = write_with_fallback("--out", opts.out, lambda folder: write_report(folder, record, summary, studies))
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM after training: the finished run is not lost
        # "After training" starts inside run_training: the trainer writes the last step's checkpoint in its
        # loop, then evaluates the final state (and the progress bar closes) outside it, where its own
        # note is not added. An interrupt inside the loop has that note (it says where the state is).
        # Before the loop there is no checkpoint of this run: one of the last step's name may be an
        # earlier run's, so outside run_training's return it counts only if this run wrote it, i.e. the
        # file changed (a new file is renamed into place: another inode). Not its mtime against the start
        # time: a coarse or skewed file system clock could date a new file earlier than the start.
        # Resumed from the last step's checkpoint, nothing is trained or written: the state is in that file.
        written = trained or _file_identity(final) != before
        last = final if written and final.is_file() else _resumed_last_state(opts.resume, steps)
        if not getattr(exc, "__notes__", None) and last is not None:
            exc.add_note(f"training had finished: its last state is in {last} (resume from it)")
        raise
    return int(summary["exit_code"]), summary, files


__all__ = [
    "AuditOptions",
    "Dataset",
    "EngineName",
    "audit",
    "progress_bar",
    "provenance",
    "resolve_engine",
    "run_training",
    "torch_available",
    "train_config",
]
