"""``ddcl-incrt bench``: what the PyTorch engine costs, measured side by side in one process, with the
evidence beside the numbers (the CPU's model and flags, the load before and after, the rows whose
spread is wider than their median); ``--profile`` shows where a step's time goes first.

Every number is a median (with min–max and the quartiles in the JSON) of ``repeats`` timed iterations
after ``warmup`` untimed ones, each iteration timed alone with :func:`time.perf_counter` (the device
synchronised before each clock read on CUDA). All sections run in the same process, in the same thread
setting (``torch.set_num_threads(threads)``, and the same limit on NumPy's BLAS for the reference); the
two steps of a ratio are timed as pairs, ``A B A B …``, so that drift cancels in it.

1. **Training step** — forward + backward + Adam, a full step, of the layer's fast path
   (:class:`accelerated.step.StepFunction`, autograd gradients, :class:`accelerated.optim.Adam`)
   against the standard block it replaces, ``torch.nn.TransformerEncoderLayer`` with ``torch.optim.Adam``,
   between the same input projection (``x W_in`` + learned positions) and the same readout (mean over the
   sequence, linear, cross-entropy). The baseline's feed-forward width ``ff`` is chosen so that its
   parameter count ``2·d·ff + ff + d`` is the closest to the prototype dictionary's ``d·K``
   (:func:`feedforward_width`); its head count is the nearest divisor of ``d`` (:func:`baseline_heads`).
   float32 and float64, eager and ``torch.compile``d; the first warm-up iteration minus the median is
   the compile time, and a compilation that failed (the step then runs eagerly) is reported, not hidden.
2. **Growth check** — one :func:`accelerated.growth_phases.growth_check` on the run's initial state (one
   head), built as :func:`training.trainer.run` builds it: its cost per check, as a multiple of one
   training step (paired with it), and amortised over the ``g = 50`` steps between checks.
3. **Speed-up over the reference** — the NumPy reference's step (:func:`reference.backward.loss_and_gradients`
   and :class:`reference.optim.Adam`, as :func:`training.trainer.train_step` without the invariants)
   against the steps of section 1 at the same configuration.
4. **Scaling** — the eager float32 step as each of ``T``, ``K``, ``H``, ``d`` is doubled alone, beside the
   ratio the FLOP count predicts.
5. **FLOP/s** — the step's achieved rate, from the analytic count of :func:`forward_flops` (×3 for
   forward + backward), as a fraction of this machine's measured ``torch.matmul`` rate in that dtype.

The package, one subject per module: :mod:`~ddcl_incrt.bench.configs` (sizes, options, the baseline's
shape, FLOP count), :mod:`~ddcl_incrt.bench.timing` (measuring, pairing, the spread check),
:mod:`~ddcl_incrt.bench.evidence` (the machine, the CPU, the load, the thread setting),
:mod:`~ddcl_incrt.bench.steps` (the three steps), :mod:`~ddcl_incrt.bench.sections` (the timed sections),
:mod:`~ddcl_incrt.bench.profile` (``--profile``), :mod:`~ddcl_incrt.bench.report` (tables, notes, JSON)
and :mod:`~ddcl_incrt.bench.command` (the run, the subcommand's body, ``python -m ddcl_incrt.bench``).
The options are :func:`ddcl_incrt.arguments.add_bench_arguments`; :mod:`ddcl_incrt.cli` imports the
bench, never the reverse.
"""

from __future__ import annotations

from ddcl_incrt.bench.command import main, run, run_cli
from ddcl_incrt.bench.configs import (
    CHECK_EVERY,
    D_IN,
    LAMBDA_Q,
    LARGE,
    LR,
    MATMUL_N,
    N_CLASSES,
    PROBE_SIZE,
    PROFILE_TOP,
    SCHEMA,
    T_P,
    WARMUP,
    BenchConfig,
    BenchOptions,
    Mode,
    baseline_heads,
    feedforward_width,
    forward_flops,
)
from ddcl_incrt.bench.evidence import cpu_info, load_average, machine
from ddcl_incrt.bench.profile import profile_section
from ddcl_incrt.bench.report import print_tables, write_json_atomic
from ddcl_incrt.bench.sections import (
    flops_section,
    growth_check_section,
    matmul_peak,
    reference_section,
    scaling_section,
    training_step_section,
)
from ddcl_incrt.bench.timing import Paired, Timing, measure, measure_paired, spread_warnings, wide_spread

__all__ = [
    "CHECK_EVERY",
    "D_IN",
    "LAMBDA_Q",
    "LARGE",
    "LR",
    "MATMUL_N",
    "N_CLASSES",
    "PROBE_SIZE",
    "PROFILE_TOP",
    "SCHEMA",
    "T_P",
    "WARMUP",
    "BenchConfig",
    "BenchOptions",
    "Mode",
    "Paired",
    "Timing",
    "baseline_heads",
    "cpu_info",
    "feedforward_width",
    "flops_section",
    "forward_flops",
    "growth_check_section",
    "load_average",
    "machine",
    "main",
    "matmul_peak",
    "measure",
    "measure_paired",
    "print_tables",
    "profile_section",
    "reference_section",
    "run",
    "run_cli",
    "scaling_section",
    "spread_warnings",
    "training_step_section",
    "wide_spread",
    "write_json_atomic",
]
