"""SGD and Adam on flat ``{name: tensor}`` parameters (mirrors :mod:`reference.optim`).

Functional, like the reference: ``step(state, params, grads) -> (new_params, new_state)``, state keyed
by parameter name with Adam's step count per parameter. A birth adds names (their moments start at
zero with ``t = 0``) and leaves every existing entry as the same tensor object; a prune drops names
(``state.without(names)``); ``state.without_column("P", j)`` resizes ``P``'s moments at a prototype
prune. Per-group learning rates come from :class:`reference.optim.LearningRates` (the one definition
of the groups).

Both state types answer the reference's questions (``kind``, ``moments``, ``without``,
``without_column``; see :mod:`reference.optim`) and two of the device's own: ``to_reference()`` (exact
float64 host copies) and ``named_tensors()`` (every value of the state by name, what the distributed
ranks compare). The way back is the optimiser's ``state_from_reference``, which, like ``step``, refuses
another optimiser's state.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import ClassVar, TypeAlias, TypeVar

import torch
from torch import Tensor

from accelerated.backward import to_host
from accelerated.checks import check_device, check_dtype
from reference import optim as ref_optim
from reference._arrays import arr, check_index, check_positive
from reference.optim import LearningRates, OptimizerKind


def _check_rates(lr: object) -> None:
    if not isinstance(lr, LearningRates):
        raise TypeError(f"lr: expected reference.optim.LearningRates, got {type(lr).__name__}")


def _check_params_grads(params: Mapping[str, Tensor], grads: Mapping[str, Tensor]) -> None:
    for arg, values in (("params", params), ("grads", grads)):
        if not isinstance(values, Mapping):
            raise TypeError(f"{arg}: expected a mapping of parameter names to tensors, got {type(values).__name__}")
        for name, t in values.items():
            if not isinstance(t, Tensor) or not t.dtype.is_floating_point:
                raise TypeError(f"{arg}[{name!r}]: expected a floating torch.Tensor, got {type(t).__name__}")
    if set(params) != set(grads):
        raise ValueError(
            f"grads: names must be the parameters'; missing {sorted(set(params) - set(grads))}, "
            f"unexpected {sorted(set(grads) - set(params))}"
        )
    for name, p in params.items():
        if grads[name].shape != p.shape:
            raise ValueError(f"grads[{name!r}]: shape {tuple(grads[name].shape)} differs from {tuple(p.shape)}")


@dataclass(frozen=True)
class SGDState:
    """SGD keeps no per-parameter state; only the number of steps taken (as
    :class:`reference.optim.SGDState`: no moments, nothing to drop or resize)."""

    kind: ClassVar[OptimizerKind] = "sgd"
    steps: int = 0

    @property
    def moments(self) -> Mapping[str, AdamMoments]:
        return _NO_MOMENTS

    def without(self, names: Collection[str]) -> SGDState:
        return self

    def without_column(self, name: str, column: int) -> SGDState:
        _check_name(name)
        return self

    def to_reference(self) -> ref_optim.SGDState:
        return ref_optim.SGDState(steps=self.steps)

    def named_tensors(self) -> dict[str, Tensor]:
        return {"steps": torch.tensor(self.steps)}


@dataclass(frozen=True)
class SGD:
    """``p ← p − η_group · g``."""

    lr: LearningRates

    def __post_init__(self) -> None:
        _check_rates(self.lr)

    def init_state(self) -> SGDState:
        return SGDState()

    def state_from_reference(self, state: ref_optim.OptState, *, dtype: torch.dtype, device: str = "cpu") -> SGDState:
        """The reference's SGD state on the device (a step count: nothing to convert)."""
        check_dtype(dtype)
        check_device(device)
        return SGDState(steps=_own_state(self, state, ref_optim.SGDState).steps)

    def step(
        self, state: OptState, params: Mapping[str, Tensor], grads: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], SGDState]:
        state = _own_state(self, state, SGDState)
        _check_params_grads(params, grads)
        with torch.no_grad():
            new = {name: p - self.lr.for_name(name) * grads[name] for name, p in params.items()}
        return new, SGDState(steps=state.steps + 1)


@dataclass(frozen=True)
class AdamMoments:
    """Adam's state for one parameter: moment estimates and its own step count (as the reference)."""

    m: Tensor
    v: Tensor
    t: int


_NO_MOMENTS: Mapping[str, AdamMoments] = MappingProxyType({})


@dataclass(frozen=True)
class AdamState:
    """Per-parameter moments keyed by flat name (read-only mapping)."""

    kind: ClassVar[OptimizerKind] = "adam"
    moments: Mapping[str, AdamMoments] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "moments", MappingProxyType(dict(self.moments)))

    def without(self, names: Collection[str]) -> AdamState:
        """The state without the entries of ``names`` (a pruned head's); every other entry the same object."""
        return AdamState({k: v for k, v in self.moments.items() if k not in names})

    def without_column(self, name: str, column: int) -> AdamState:
        """The state with column ``column`` of parameter ``name``'s moments removed (a prototype prune)."""
        _check_name(name)
        if name not in self.moments:
            return self
        old = self.moments[name]
        if old.m.dim() != 2:
            raise ValueError(f"name: {name!r} is not a matrix parameter (its moments have shape {tuple(old.m.shape)})")
        check_index("column", column, old.m.shape[1])
        keep = [j for j in range(old.m.shape[1]) if j != column]
        resized = replace(old, m=old.m[:, keep], v=old.v[:, keep])
        return AdamState(moments={**self.moments, name: resized})

    def to_reference(self) -> ref_optim.AdamState:
        """The moments as the reference's (float64 host copies: exact)."""
        return ref_optim.AdamState(
            moments={
                name: ref_optim.AdamMoments(m=arr(to_host(mom.m)), v=arr(to_host(mom.v)), t=mom.t)
                for name, mom in self.moments.items()
            }
        )

    def named_tensors(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for name, mom in self.moments.items():
            out.update({f"{name}.m": mom.m, f"{name}.v": mom.v, f"{name}.t": torch.tensor(mom.t)})
        return out


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction and per-group rates, formula for formula the reference's."""

    lr: LearningRates
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        _check_rates(self.lr)
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= float(value) < 1.0:
                raise ValueError(f"Adam.{name}: must be a real number in [0, 1), got {value!r}")
        check_positive("Adam.eps", self.eps)

    def init_state(self) -> AdamState:
        return AdamState()

    def state_from_reference(self, state: ref_optim.OptState, *, dtype: torch.dtype, device: str = "cpu") -> AdamState:
        """The reference's Adam state on the device in ``dtype`` (exact when the moments are values of
        ``dtype``, as those :meth:`AdamState.to_reference` returns)."""
        check_dtype(dtype)
        check_device(device)
        return AdamState(
            moments={
                name: AdamMoments(
                    m=torch.tensor(mom.m, dtype=dtype, device=device),
                    v=torch.tensor(mom.v, dtype=dtype, device=device),
                    t=mom.t,
                )
                for name, mom in _own_state(self, state, ref_optim.AdamState).moments.items()
            }
        )

    def step(
        self, state: OptState, params: Mapping[str, Tensor], grads: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], AdamState]:
        state = _own_state(self, state, AdamState)
        _check_params_grads(params, grads)
        names = list(params)  # names absent from params are dropped with their state
        ps = [params[n] for n in names]
        gs = [grads[n] for n in names]
        olds = []
        for name, p in zip(names, ps, strict=True):
            old = state.moments.get(name)
            if old is None:
                old = AdamMoments(m=torch.zeros_like(p), v=torch.zeros_like(p), t=0)
            elif old.m.shape != p.shape:
                raise ValueError(f"state: moments of {name!r} have shape {tuple(old.m.shape)}, not {tuple(p.shape)}")
            olds.append(old)
        ts = [o.t + 1 for o in olds]
        # torch's fused Adam kernel, one call per learning-rate group, on copies (the step stays
        # functional: the old parameters and moments are left as they were). Same update as the
        # reference, p − η m̂/(√v̂ + ε), rounded in another order (the kernel divides √v by
        # √(1 − β₂ᵗ) instead of v by 1 − β₂ᵗ): the difference is a few ulps per step, within the VALUE
        # row over whole trajectories (tests/test_accelerated_trainer.py), and the kernel is about 9×
        # faster than one multi-tensor operation per formula step at the digits size.
        with torch.no_grad():
            # contiguous copies: the kernel walks raw storage (autograd's gradients of stacked
            # weights can be strided views)
            new = [p.detach().clone(memory_format=torch.contiguous_format) for p in ps]
            m = [o.m.clone(memory_format=torch.contiguous_format) for o in olds]
            v = [o.v.clone(memory_format=torch.contiguous_format) for o in olds]
            # the kernel reads the step count after its increment (torch.optim.Adam increments first)
            counts = [torch.tensor(float(t), dtype=torch.float32, device=p.device) for t, p in zip(ts, ps, strict=True)]
            groups: dict[float, list[int]] = {}
            for i, n in enumerate(names):
                groups.setdefault(self.lr.for_name(n), []).append(i)
            for lr, idx in groups.items():
                torch._fused_adam_(
                    [new[i] for i in idx],
                    [gs[i].detach().contiguous() for i in idx],
                    [m[i] for i in idx],
                    [v[i] for i in idx],
                    [],
                    [counts[i] for i in idx],
                    amsgrad=False,
                    lr=lr,
                    beta1=self.beta1,
                    beta2=self.beta2,
                    weight_decay=0.0,
                    eps=self.eps,
                    maximize=False,
                )
        new_params = dict(zip(names, new, strict=True))
        new_moments = {n: AdamMoments(m=a, v=b, t=t) for n, a, b, t in zip(names, m, v, ts, strict=True)}
        return new_params, AdamState(moments=new_moments)


OptState: TypeAlias = SGDState | AdamState

_S = TypeVar("_S")


def _own_state(optimizer: SGD | Adam, state: object, own: type[_S]) -> _S:
    """``state``, if it is ``optimizer``'s kind of state (boundary validation of an input)."""
    if not isinstance(state, own):
        raise TypeError(
            f"state: {type(optimizer).__name__} needs {own.__module__}.{own.__name__}, got {type(state).__name__}"
        )
    return state


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"name: expected a parameter name (str), got {type(name).__name__}")


__all__ = ["SGD", "Adam", "AdamMoments", "AdamState", "OptState", "SGDState"]
