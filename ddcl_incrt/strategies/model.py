"""Hypothesis strategies for the whole layer (``reference.model``): configs, parameters, batches.

Hypothesis draws the *structure* — sizes, temperatures, ``λ_q``, the sequence of head growths and
prunes, the pruned prototypes, each head's log-temperature — and a seed; array contents come from
``numpy.random.default_rng(seed)`` through the reference's own initialiser, so every case is a state
training could actually reach. Strategies yield a :class:`ModelSpec` (plain data, a short repr that
is itself the copy-paste reproduction); ``spec.build()`` makes the :class:`ModelCase`.

Value ranges (``T_P ∈ [1/2, 4]``, ``s ∈ [−1, 1]``, unit-scale inputs) keep the loss's third
derivatives O(1), which the float64 GRADIENT tolerance assumes (error ≈ h²·f'''/6 with h = u^{1/3});
they are not limits of the formulas. All sizes respect the caps in :mod:`ddcl_incrt.strategies._caps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
from hypothesis import strategies as st
from numpy.typing import NDArray

from ddcl_incrt.strategies._caps import (
    MAX_BATCH,
    MAX_HEADS,
    MAX_PROTOTYPES,
    MAX_SEQ,
    MAX_TOKENS,
    MAX_WIDTH,
    check_size,
)
from reference._arrays import F64Array, arr, check_count, check_index, check_log_temperature
from reference.model import LayerConfig, ModelParams, init_params
from reference.surgery import add_head, flatten, head_param_name, remove_head, remove_prototype_column, unflatten

HeadOp: TypeAlias = tuple[Literal["add", "remove"], int]  # ("remove", k): prune the k-th active head by id order

T_P_RANGE = (0.5, 4.0)
LAMBDA_Q_RANGE = (0.0, 2.0)
LOG_TEMPERATURE_RANGE = (-1.0, 1.0)


@dataclass(frozen=True)
class ModelSpec:
    """Everything that determines a case, as plain data; :meth:`build` makes the arrays.

    Strategies draw specs, and tests build them: building runs the reference (and, under pytest,
    its beartype checks, which sample containers with the ``random`` module — not allowed inside a
    strategy). The spec's repr is also the case's copy-paste reproduction: ``ModelSpec(...).build()``.
    """

    cfg: LayerConfig
    seed: int
    head_ops: tuple[HeadOp, ...]
    removed_prototypes: tuple[int, ...]
    log_temperatures: tuple[float, ...]
    batch: int

    def __post_init__(self) -> None:
        """Refuse a spec that cannot be built, naming the field (a hand-written reproduction may be wrong)."""
        if not isinstance(self.cfg, LayerConfig):
            raise TypeError(f"cfg: expected reference.model.LayerConfig, got {type(self.cfg).__name__}")
        check_count("seed", self.seed, 0)
        check_count("batch", self.batch, 1)
        for name in ("head_ops", "removed_prototypes", "log_temperatures"):
            if not isinstance(getattr(self, name), tuple):
                raise TypeError(f"{name}: expected a tuple, got {type(getattr(self, name)).__name__}")
        count = 1
        for i, item in enumerate(self.head_ops):
            if not (isinstance(item, tuple) and len(item) == 2 and item[0] in ("add", "remove")):
                raise ValueError(f"head_ops[{i}]: expected ('add', 0) or ('remove', k), got {item!r}")
            if item[0] == "add":
                count += 1
                continue
            k = check_count(f"head_ops[{i}]", item[1], 0)
            if count == 1 or k >= count:
                raise ValueError(
                    f"head_ops[{i}]: ('remove', {k}) needs a head index below the {count} active heads, and at "
                    "least two heads (the layer keeps one)"
                )
            count -= 1
        removed = [
            check_index(f"removed_prototypes[{i}]", p, self.cfg.K_max) for i, p in enumerate(self.removed_prototypes)
        ]
        if len(set(removed)) != len(removed) or len(removed) >= self.cfg.K_max:
            raise ValueError(
                f"removed_prototypes: expected distinct ids leaving at least one of the {self.cfg.K_max} "
                f"prototypes, got {self.removed_prototypes!r}"
            )
        if len(self.log_temperatures) != count:
            raise ValueError(
                f"log_temperatures: expected one per active head after head_ops ({count}), got "
                f"{len(self.log_temperatures)}"
            )
        for i, s in enumerate(self.log_temperatures):
            check_log_temperature(f"log_temperatures[{i}]", s)

    def build(self) -> ModelCase:
        """Init (one head), apply ``head_ops``, prune prototypes by id, set the final heads'
        log-temperatures (in id order), then draw ``x ~ N(0, 1)`` and uniform labels."""
        cfg = self.cfg
        rng = np.random.default_rng(self.seed)
        params = init_params(cfg, rng=rng)
        for op, k in self.head_ops:
            if op == "add":
                params, _ = add_head(params, cfg, rng=rng)
            else:
                params = remove_head(params, sorted(params.heads)[k])
        for proto_id in self.removed_prototypes:
            params = remove_prototype_column(params, proto_id)
        if len(self.log_temperatures) != len(params.heads):
            raise ValueError(
                f"log_temperatures: expected one per active head ({len(params.heads)}), "
                f"got {len(self.log_temperatures)}"
            )
        flat = dict(flatten(params))
        for hid, s in zip(sorted(params.heads), self.log_temperatures, strict=True):
            flat[head_param_name(hid, "s")] = np.array(s, dtype=np.float64)
        params = unflatten(flat, like=params)
        x = arr(rng.standard_normal((self.batch, cfg.seq_len, cfg.d_in)))
        labels = rng.integers(0, cfg.n_classes, size=self.batch, dtype=np.int64)
        return ModelCase(spec=self, cfg=cfg, params=params, x=x, labels=labels)


@dataclass(frozen=True)
class ModelCase:
    """A config, parameters reached by a sequence of growth/prune events, and a labelled batch."""

    spec: ModelSpec
    cfg: LayerConfig
    params: ModelParams
    x: F64Array
    labels: NDArray[np.int64]

    def repro(self) -> str:
        """One line that rebuilds the case from which these parameters came."""
        return f"{self.spec!r}.build()"


@st.composite
def layer_configs(draw: st.DrawFn) -> LayerConfig:
    """A valid :class:`LayerConfig` within the caps (the class count is capped like a width)."""
    return LayerConfig(
        d_in=draw(st.integers(1, MAX_WIDTH)),
        d=draw(st.integers(1, MAX_WIDTH)),
        d_k=draw(st.integers(1, MAX_WIDTH)),
        d_v=draw(st.integers(1, MAX_WIDTH)),
        seq_len=draw(st.integers(1, MAX_SEQ)),
        K_max=draw(st.integers(1, MAX_PROTOTYPES)),
        n_classes=draw(st.integers(2, MAX_WIDTH)),
        T_P=draw(st.floats(*T_P_RANGE)),
        lambda_q=draw(st.floats(*LAMBDA_Q_RANGE)),
        s_init=draw(st.floats(*LOG_TEMPERATURE_RANGE)),
    )


def head_op_sequences(*, min_heads: int = 1, max_heads: int = MAX_HEADS) -> st.SearchStrategy[tuple[HeadOp, ...]]:
    """Growth/prune events from one head that end with between ``min_heads`` and ``max_heads`` heads.

    The count never leaves ``[1, max_heads]`` on the way (the layer keeps one head; the cap bounds
    the work), and the sequence is long enough to reach ``min_heads``.
    Needs ``1 <= min_heads <= max_heads <= MAX_HEADS``.
    """
    lo = check_size("min_heads", min_heads, 1, MAX_HEADS)
    return _head_op_sequences(lo, check_size("max_heads", max_heads, lo, MAX_HEADS))


@st.composite
def _head_op_sequences(draw: st.DrawFn, min_heads: int, max_heads: int) -> tuple[HeadOp, ...]:
    ops: list[HeadOp] = []
    count = 1
    for _ in range(draw(st.integers(0, 2 * max_heads))):
        can_add, can_remove = count < max_heads, count > 1
        if can_add and (not can_remove or draw(st.booleans())):
            ops.append(("add", 0))
            count += 1
        elif can_remove:
            ops.append(("remove", draw(st.integers(0, count - 1))))
            count -= 1
    while count < min_heads:
        ops.append(("add", 0))
        count += 1
    return tuple(ops)


def model_specs(
    *,
    min_heads: int = 1,
    max_heads: int = MAX_HEADS,
    max_removed_prototypes: int = MAX_PROTOTYPES - 1,
) -> st.SearchStrategy[ModelSpec]:
    """A whole case as a spec: config, growth/prune events, prototype prunes, log-temperatures, batch.

    Needs ``1 <= min_heads <= max_heads <= MAX_HEADS`` and ``0 <= max_removed_prototypes < MAX_PROTOTYPES``."""
    ops = head_op_sequences(min_heads=min_heads, max_heads=max_heads)  # validates min_heads, max_heads
    removed = check_size("max_removed_prototypes", max_removed_prototypes, 0, MAX_PROTOTYPES - 1)
    return _model_specs(ops, removed)


@st.composite
def _model_specs(
    draw: st.DrawFn, head_ops: st.SearchStrategy[tuple[HeadOp, ...]], max_removed_prototypes: int
) -> ModelSpec:
    cfg = draw(layer_configs())
    ops = draw(head_ops)
    n_heads = 1 + sum(1 if op == "add" else -1 for op, _ in ops)
    n_removed = draw(st.integers(0, min(max_removed_prototypes, cfg.K_max - 1)))
    removed = draw(st.permutations(range(cfg.K_max)))[:n_removed]
    s = draw(st.lists(st.floats(*LOG_TEMPERATURE_RANGE), min_size=n_heads, max_size=n_heads))
    return ModelSpec(
        cfg=cfg,
        seed=draw(st.integers(0, 2**32 - 1)),
        head_ops=ops,
        removed_prototypes=tuple(removed),
        log_temperatures=tuple(s),
        batch=draw(st.integers(1, min(MAX_BATCH, MAX_TOKENS // cfg.seq_len))),
    )


__all__ = [
    "LAMBDA_Q_RANGE",
    "LOG_TEMPERATURE_RANGE",
    "T_P_RANGE",
    "HeadOp",
    "ModelCase",
    "ModelSpec",
    "head_op_sequences",
    "layer_configs",
    "model_specs",
]
