"""Hypothesis strategies for DDCL-INCRT inputs, importable by other projects' test suites.

Install with ``pip install -e ".[strategies]"`` in a clone (the package is not on PyPI; the extra adds
``hypothesis``, nothing else);
``docs/strategies.md`` shows them driving the invariants of ``reference.invariants`` on a user's own
implementation. Every name here is also importable from its submodule (``ddcl_incrt.strategies.ddcl``,
``.incrt``, ``.model``).

Guarantees of every strategy: float64 arrays with finite entries, sizes within the caps below, and
only inputs the reference accepts (each strategy is itself tested for that, tests/test_strategies*.py).
A strategy function checks its arguments when it is called, not at the first draw: a wrong type raises
hypothesis's ``InvalidArgument``, a value out of range :class:`StrategyArgumentError` (an
``InvalidArgument`` that is also a ``ValueError``), naming the argument.

Caps: ``n ≤ MAX_TOKENS`` (12) tokens, width ``d ≤ MAX_WIDTH`` (5), ``K ≤ MAX_PROTOTYPES`` (5)
prototypes, sequence length ``T ≤ MAX_SEQ`` (4), batch ``B ≤ MAX_BATCH`` (3), at most ``MAX_HEADS`` (3)
heads: the reference does ``O(n·K·d)`` work or more per call, and small examples shrink well.

DDCL block (``ddcl_incrt.strategies.ddcl``; claims D1–D6):

``ddcl_problems(*, min_K=1, max_K=MAX_PROTOTYPES, scales=scale_exponents, temps=temperatures)``
    :class:`DDCLProblem` ``(Y n×d, P d×K, T_P)``, ``K`` in ``[min_K, max_K]``: tokens and prototypes
    with entries in ``[−1, 1]·10^e`` for one ``e`` drawn from ``scales``, ``T_P > 0`` from ``temps``.
    The defaults reach SPEC §6's extremes: ``e`` mostly in ``−3…3`` but sometimes ``−70`` or ``74``
    (squared distances up to ~1e150), ``T_P`` in ``10^-6 … 10^6``, and ``K = 1``.
``moderate_ddcl_problems(*, min_K=1)``
    The same in the well-conditioned regime (``e = 0``, ``T_P ∈ [0.1, 10]``): every invariant's bound
    is finite and far below the quantities it bounds, so a planted error is detected on every example.
``row_stochastic(n, K)``
    An n×K matrix with non-negative entries and unit row sums (``n, K ≥ 1``): dense, sparse and
    one-hot rows (an assignment ``Q`` for D1).
``dcl_problems()``
    ``(Y_b, W, b, grad_P, eta)`` for the dual competitive layer (D6): ``Y_b`` n_b×d at scale ``10^-3 … 10^3``,
    ``W`` n_b×K, ``b`` (K,), ``grad_P`` d×K with entries in ``[−1, 1]``, ``eta ∈ [10^-4, 1]``.
``scale_exponents``, ``moderate_scale_exponents``
    Integer exponents ``e``: the defaults of ``ddcl_problems(scales=...)`` (above) and of the moderate regime (``0``).
    (``ddcl_incrt.strategies.incrt.scale_exponents``, ``−3…3``, is planted_operators' own and not re-exported.)
``temperatures``, ``moderate_temperatures``
    ``T_P > 0``: ``10^-6 … 10^6`` and ``10^-1 … 10^1``, for ``ddcl_problems(temps=...)``.

INCRT growth rule (``ddcl_incrt.strategies.incrt``; claims G1–G6):

``planted_operators(*, min_d=1, max_d=MAX_WIDTH, simple=False, min_m_star=0)``
    :class:`PlantedOperator`: a symmetric ``A = V diag(λ) Vᵀ`` (``V`` orthogonal, ``λ`` non-increasing
    on the grid ``scale·k/GRID``, ``|λ| ≤ 2·scale``), a threshold ``theta > 0`` half a grid step from every
    eigenvalue (no near-tie), at least ``min_m_star`` eigenvalues above it (``m_star``); repeated
    eigenvalues occur unless ``simple=True`` (all distinct: G4's spectral gap).
``orthogonal_matrices(d)``
    A d×d orthogonal matrix (``d ≥ 1``).
``orthonormal_sets(d, m)``
    A d×m matrix with orthonormal columns, ``0 ≤ m ≤ d`` (d×0 for ``m = 0``): a captured set ``Q_cap``.
``antisymmetric_matrices(d, scale=1.0)``
    An exactly antisymmetric d×d matrix with entries in ``[−scale, scale]``: a head's ``M_a^h``.
``second_moments(d)``
    ``C = XᵀX/n``, exactly symmetric and positive semi-definite: a second moment.
``prune_problems()``
    :class:`PruneProblem` ``(C, head_operators, Q_cap, h, theta)`` for G5: one to ``MAX_HEADS``
    antisymmetric head operators, an orthonormal ``Q_cap``, the index ``h`` of the head to remove.

Whole layer (``ddcl_incrt.strategies.model``; ``reference.model``):

``layer_configs()``
    A valid ``reference.model.LayerConfig`` within the caps (``T_P ∈ [1/2, 4]``, ``λ_q ∈ [0, 2]``).
``head_op_sequences(*, min_heads=1, max_heads=MAX_HEADS)``
    A tuple of :data:`HeadOp` growth/prune events from one head, ending with ``min_heads … max_heads``
    heads and never below one head or above ``max_heads`` on the way.
``model_specs(*, min_heads=1, max_heads=MAX_HEADS, max_removed_prototypes=MAX_PROTOTYPES - 1)``
    A :class:`ModelSpec`: config, growth/prune events, pruned prototypes, log-temperatures in
    ``[−1, 1]``, batch size and a seed; plain data whose repr is the copy-paste reproduction.
    ``spec.build()`` (call it in the test, not inside a strategy) gives the :class:`ModelCase`:
    parameters training could reach, a batch ``x ~ N(0, 1)`` and labels.
"""

from __future__ import annotations

import importlib.util

from ddcl_incrt.installation import ForeignPackageError, foreign_package

# A user's own module named `reference` first on sys.path: say so, naming both (not "No module named
# 'reference.invariants'; 'reference' is not a package").
if (problem := foreign_package("reference")) is not None:
    raise ForeignPackageError(problem)

# Without the extra, say which extra to install (not only "No module named 'hypothesis'").
if importlib.util.find_spec("hypothesis") is None:
    raise ModuleNotFoundError(
        'ddcl_incrt.strategies needs hypothesis, its "strategies" extra: '
        'pip install -e ".[strategies]" in a clone (not on PyPI), or pip install hypothesis',
        name="hypothesis",
    )

from ddcl_incrt.strategies._caps import (
    MAX_BATCH,
    MAX_HEADS,
    MAX_PROTOTYPES,
    MAX_SEQ,
    MAX_TOKENS,
    MAX_WIDTH,
    StrategyArgumentError,
)
from ddcl_incrt.strategies.ddcl import (
    DDCLProblem,
    dcl_problems,
    ddcl_problems,
    moderate_ddcl_problems,
    moderate_scale_exponents,
    moderate_temperatures,
    row_stochastic,
    scale_exponents,
    temperatures,
)
from ddcl_incrt.strategies.incrt import (
    PlantedOperator,
    PruneProblem,
    antisymmetric_matrices,
    orthogonal_matrices,
    orthonormal_sets,
    planted_operators,
    prune_problems,
    second_moments,
)
from ddcl_incrt.strategies.model import (
    HeadOp,
    ModelCase,
    ModelSpec,
    head_op_sequences,
    layer_configs,
    model_specs,
)

__all__ = [
    "MAX_BATCH",
    "MAX_HEADS",
    "MAX_PROTOTYPES",
    "MAX_SEQ",
    "MAX_TOKENS",
    "MAX_WIDTH",
    "DDCLProblem",
    "HeadOp",
    "ModelCase",
    "ModelSpec",
    "PlantedOperator",
    "PruneProblem",
    "StrategyArgumentError",
    "antisymmetric_matrices",
    "dcl_problems",
    "ddcl_problems",
    "head_op_sequences",
    "layer_configs",
    "model_specs",
    "moderate_ddcl_problems",
    "moderate_scale_exponents",
    "moderate_temperatures",
    "orthogonal_matrices",
    "orthonormal_sets",
    "planted_operators",
    "prune_problems",
    "row_stochastic",
    "scale_exponents",
    "second_moments",
    "temperatures",
]
