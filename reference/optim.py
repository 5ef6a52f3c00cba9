"""SGD and Adam over the flat parameter view, with one learning rate per parameter group.

Groups come from :func:`reference.surgery.param_group`: ``prototypes`` (``P``), ``temperatures``
(every ``heads.{id}.s``) and ``rest``. Separate rates let the prototypes learn faster than the encoder
(claim R3's two time scales) and keep the log-temperatures on their own scale.

The design is functional: an optimiser is a frozen, self-validating config with
``init_state()`` and ``step(state, params, grads) -> (new_params, new_state)``; nothing is updated in
place. State is keyed by parameter name, so the parameter set may change between steps:

* a name seen for the first time (a grown head) starts with fresh state, and no other entry moves;
* a name that disappeared (a pruned head) has its state dropped;
* a parameter whose shape changed must have been resized explicitly first —
  ``state.without_column("P", j)`` does it when a prototype is pruned (the other columns keep
  their moments). A silent reset would hide a bookkeeping error, so a shape mismatch raises.

Callers never ask which optimiser they hold. Both optimisers take either state and refuse the other's
(``step``), and both state types answer the same questions:

* ``kind``: the optimiser the state belongs to (``TrainConfig.optimizer``, the checkpoint's tag);
* ``moments``: the per-parameter moments by name (:class:`AdamMoments`; none for SGD);
* ``counts()`` / ``count_error(step)``: the step counts as JSON values, and the first one a run
  after ``step`` steps cannot have (SGD counts the run's steps, Adam each parameter's own);
* ``named_values()``: every value of the state by name (``steps``; ``{name}.m``, ``{name}.v``,
  ``{name}.t``), the names :mod:`accelerated.optim`'s states give their tensors;
* ``without(names)`` / ``without_column(name, j)``: the surgery of a head prune and a prototype prune.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, Literal, Protocol, TypeAlias, TypeVar, runtime_checkable

import numpy as np

from reference._arrays import F64Array, arr, check_array, check_count, check_index, check_positive, f64
from reference.surgery import ParamGroup, param_group

# --------------------------------------------------------------------------------------------------
# Learning rates per group, and the checks shared by both optimisers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LearningRates:
    """``η`` per parameter group (all > 0). ``uniform(η)`` gives every group the same rate."""

    rest: float
    prototypes: float
    temperatures: float

    def __post_init__(self) -> None:
        for name in ("rest", "prototypes", "temperatures"):
            object.__setattr__(self, name, check_positive(f"LearningRates.{name}", getattr(self, name)))

    @classmethod
    def uniform(cls, lr: float) -> LearningRates:
        return cls(rest=lr, prototypes=lr, temperatures=lr)

    def for_group(self, group: ParamGroup) -> float:
        rates: dict[ParamGroup, float] = {
            "rest": self.rest,
            "prototypes": self.prototypes,
            "temperatures": self.temperatures,
        }
        return rates[group]

    def for_name(self, name: str) -> float:
        """The rate of parameter ``name`` (raises for a name that is not a layer parameter)."""
        return self.for_group(param_group(name))


def _check_params_grads(params: Mapping[str, F64Array], grads: Mapping[str, F64Array]) -> None:
    if sorted(params) != sorted(grads):
        missing = sorted(set(params) - set(grads))
        extra = sorted(set(grads) - set(params))
        raise ValueError(f"grads: names must match params; missing {missing}, unexpected {extra}")
    for name, p in params.items():
        p_ = check_array(f"params[{name!r}]", p, np.ndim(p))
        g_ = check_array(f"grads[{name!r}]", grads[name], p_.ndim)
        if g_.shape != p_.shape:
            raise ValueError(f"grads[{name!r}]: expected shape {p_.shape} (the parameter's), got {g_.shape}")
        param_group(name)  # reject names that are not parameters of the layer


OptimizerKind: TypeAlias = Literal["sgd", "adam"]


# --------------------------------------------------------------------------------------------------
# SGD
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SGDState:
    """SGD keeps no per-parameter state; only the number of steps taken, for reports.

    The interface both state types share (the module doc): SGD has no moments, its one count is the
    run's step, and a pruned head or prototype leaves nothing to drop or resize."""

    kind: ClassVar[OptimizerKind] = "sgd"
    steps: int = 0

    @property
    def moments(self) -> Mapping[str, AdamMoments]:
        return _NO_MOMENTS

    def counts(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def count_error(self, step: int) -> tuple[str, str] | None:
        """``(field of counts(), why)`` unless ``steps`` is the run's ``step``."""
        return None if self.steps == step else ("steps", f"expected the step {step}, got {self.steps}")

    def named_values(self) -> dict[str, F64Array | int]:
        return {"steps": self.steps}

    def without(self, names: Collection[str]) -> SGDState:
        return self

    def without_column(self, name: str, column: int) -> SGDState:
        param_group(name)
        return self


@dataclass(frozen=True)
class SGD:
    """Plain gradient descent: ``p ← p − η_group(p) · g``."""

    lr: LearningRates

    def __post_init__(self) -> None:
        if not isinstance(self.lr, LearningRates):
            raise TypeError(f"lr: expected LearningRates, got {type(self.lr).__name__}")

    def init_state(self) -> SGDState:
        return SGDState()

    def step(
        self, state: OptState, params: Mapping[str, F64Array], grads: Mapping[str, F64Array]
    ) -> tuple[dict[str, F64Array], SGDState]:
        _check_params_grads(params, grads)
        state = _own_state(self, state, SGDState)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by name
            new = {name: arr(p - self.lr.for_name(name) * grads[name]) for name, p in params.items()}
        _check_finite_step("SGD", new, grads)
        return new, SGDState(steps=state.steps + 1)


def _check_finite_step(optimizer: str, new: Mapping[str, F64Array], grads: Mapping[str, F64Array]) -> None:
    """Refuse a step whose result is not finite (finite parameters and gradients can still overflow):
    a diverged run is reported, naming the parameter, never carried on with ±inf."""
    for name, p in new.items():
        if not np.all(np.isfinite(p)):
            raise FloatingPointError(
                f"{optimizer}: parameter {name!r} became non-finite after the step (max |g| = "
                f"{f64(np.abs(grads[name]).max()):.3g}): training diverged; lower the learning rate"
            )


# --------------------------------------------------------------------------------------------------
# Adam
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdamMoments:
    """Adam's state for one parameter: first/second moment estimates and its own step count.

    The count is per parameter so a head grown at step 1000 gets the bias correction of a fresh
    start (``t = 1``), not of step 1001, which would under-correct its zero-initialised moments.
    """

    m: F64Array
    v: F64Array
    t: int

    def __post_init__(self) -> None:
        m = check_array("AdamMoments.m", self.m, self.m.ndim if isinstance(self.m, np.ndarray) else 0, allow_empty=True)
        v = check_array("AdamMoments.v", self.v, m.ndim, allow_empty=True)
        if m.shape != v.shape:
            raise ValueError(f"AdamMoments: m and v must have the same shape, got {m.shape} and {v.shape}")
        if v.size and f64(v.min()) < 0.0:
            raise ValueError(f"AdamMoments.v: second moments must be >= 0, got min {f64(v.min())!r}")
        check_count("AdamMoments.t", self.t, 0)


_NO_MOMENTS: Mapping[str, AdamMoments] = MappingProxyType({})


@dataclass(frozen=True)
class AdamState:
    """Per-parameter moments, keyed by flat parameter name (read-only mapping)."""

    kind: ClassVar[OptimizerKind] = "adam"
    moments: Mapping[str, AdamMoments] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "moments", MappingProxyType(dict(self.moments)))

    def counts(self) -> dict[str, Any]:
        return {"t": {name: mom.t for name, mom in self.moments.items()}}

    def count_error(self, step: int) -> tuple[str, str] | None:
        """``(field of counts(), why)`` for the first parameter whose count exceeds the run's ``step``
        (a parameter born later has taken fewer steps, never more)."""
        for name, mom in self.moments.items():
            if not 0 <= mom.t <= step:
                return f"t.{name}", f"a step count lies in [0, {step}], got {mom.t}"
        return None

    def named_values(self) -> dict[str, F64Array | int]:
        out: dict[str, F64Array | int] = {}
        for name, mom in self.moments.items():
            out.update({f"{name}.m": mom.m, f"{name}.v": mom.v, f"{name}.t": mom.t})
        return out

    def without(self, names: Collection[str]) -> AdamState:
        """The state without the entries of ``names`` (a pruned head's); every other entry the same object."""
        return AdamState(moments={k: v for k, v in self.moments.items() if k not in names})

    def without_column(self, name: str, column: int) -> AdamState:
        """The state with column ``column`` of parameter ``name`` removed (``P`` on a prototype prune).

        Every other parameter's state, and the other columns of ``name``, are unchanged. A parameter
        without state yet (never stepped) is left as it is."""
        param_group(name)
        moments = self.moments.get(name)
        if moments is None:
            return self
        if moments.m.ndim != 2:
            raise ValueError(f"name: {name!r} is not a matrix parameter (its moments have shape {moments.m.shape})")
        j = check_index("column", column, moments.m.shape[1])
        resized = replace(moments, m=arr(np.delete(moments.m, j, axis=1)), v=arr(np.delete(moments.v, j, axis=1)))
        return AdamState(moments={**self.moments, name: resized})


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma & Ba) with bias correction and per-group rates:

    ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``, ``p ← p − η_group · m̂ / (√v̂ + ε)`` with
    ``m̂ = m/(1−β₁ᵗ)``, ``v̂ = v/(1−β₂ᵗ)`` and ``t`` the parameter's own step count.
    """

    lr: LearningRates
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if not isinstance(self.lr, LearningRates):
            raise TypeError(f"lr: expected LearningRates, got {type(self.lr).__name__}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
                raise ValueError(f"Adam.{name}: must be a real number in [0, 1), got {value!r}")
        check_positive("Adam.eps", self.eps)

    def init_state(self) -> AdamState:
        return AdamState()

    def step(
        self, state: OptState, params: Mapping[str, F64Array], grads: Mapping[str, F64Array]
    ) -> tuple[dict[str, F64Array], AdamState]:
        _check_params_grads(params, grads)
        state = _own_state(self, state, AdamState)
        new_params: dict[str, F64Array] = {}
        new_moments: dict[str, AdamMoments] = {}
        for name, p in params.items():  # names absent from params are dropped with their state
            g = grads[name]
            old = state.moments.get(name)
            if old is None:
                old = AdamMoments(m=np.zeros_like(p), v=np.zeros_like(p), t=0)
            elif old.m.shape != p.shape:
                raise ValueError(
                    f"state: moments of {name!r} have shape {old.m.shape} but the parameter has shape {p.shape}; "
                    "resize the state with without_column when a prototype is pruned"
                )
            t = old.t + 1
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, by name
                m = arr(self.beta1 * old.m + (1.0 - self.beta1) * g)
                v = arr(self.beta2 * old.v + (1.0 - self.beta2) * g * g)
                m_hat = m / (1.0 - self.beta1**t)
                v_hat = v / (1.0 - self.beta2**t)
                new_params[name] = arr(p - self.lr.for_name(name) * m_hat / (np.sqrt(v_hat) + self.eps))
            if not (np.all(np.isfinite(m)) and np.all(np.isfinite(v))):
                raise FloatingPointError(
                    f"Adam: the moments of {name!r} overflowed (max |g| = {f64(np.abs(g).max()):.3g}): "
                    "training diverged"
                )
            new_moments[name] = AdamMoments(m=m, v=v, t=t)
        _check_finite_step("Adam", new_params, grads)
        return new_params, AdamState(moments=new_moments)


# --------------------------------------------------------------------------------------------------
# Either state, and the one check that an optimiser was given its own
# --------------------------------------------------------------------------------------------------

OptState: TypeAlias = SGDState | AdamState


@runtime_checkable
class Optimizer(Protocol):
    """What a training loop needs: an initial state and a pure step (which refuses another optimiser's state)."""

    def init_state(self) -> OptState: ...

    def step(
        self, state: OptState, params: Mapping[str, F64Array], grads: Mapping[str, F64Array]
    ) -> tuple[dict[str, F64Array], OptState]: ...


_S = TypeVar("_S", SGDState, AdamState)


def _own_state(optimizer: SGD | Adam, state: object, own: type[_S]) -> _S:
    """``state``, if it is ``optimizer``'s kind of state (boundary validation of ``step``'s input)."""
    if not isinstance(state, own):
        raise TypeError(f"state: {type(optimizer).__name__} needs {own.__name__}, got {type(state).__name__}")
    return state


__all__ = [
    "SGD",
    "Adam",
    "AdamMoments",
    "AdamState",
    "LearningRates",
    "OptState",
    "Optimizer",
    "OptimizerKind",
    "SGDState",
]
