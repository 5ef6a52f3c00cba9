"""SGD and Adam on ``{name: tensor}`` parameters (mirrors :mod:`reference.optim`).

Functional, like the reference: ``step(state, params, grads) -> (new_params, new_state)``, state keyed
by parameter name with Adam's step count per parameter. Parameters come under either naming of
:mod:`accelerated.backward`: the reference's flat names (``heads.{id}.W_Q``: one tensor per head, as
the reference and the conformance kit step them) or the stored tensors of :func:`accelerated.backward.
leaves`, whose five head entries are stacked (``heads.W_Q`` H×d×d_k …). Adam keeps the stacked
entries' moments stacked the same way (:class:`HeadMoments`), with a step count per head: a head born
later has taken fewer steps, and Adam's bias correction depends on that count.

A birth appends (``state.with_head(id)``: zero moment rows, count 0; flat names instead start at zero
with ``t = 0`` at their first step) and leaves every existing row or entry as it was; a prune drops
names or rows (``state.without(names)``); ``state.without_column("P", j)`` resizes ``P``'s moments at
a prototype prune. Per-group learning rates come from :class:`reference.optim.LearningRates` (the one
definition of the groups).

Both state types answer the reference's questions (``kind``, ``moments``, ``without``,
``without_column``; see :mod:`reference.optim`) and two of the device's own: ``to_reference()`` (exact
float64 host copies, under the flat names) and ``named_tensors()`` (every value of the state by name,
what the distributed ranks compare). The way back is the optimiser's ``state_from_reference``, which,
like ``step``, refuses another optimiser's state.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import ClassVar, TypeAlias, TypeVar

import torch
from torch import Tensor

from accelerated.backward import STACKED_HEAD_NAMES, flat_from_leaves, to_host
from accelerated.checks import check_device, check_dtype
from accelerated.model import HeadStack
from reference import optim as ref_optim
from reference._arrays import arr, check_index, check_positive
from reference.optim import LearningRates, OptimizerKind
from reference.surgery import HEAD_PARAM_NAMES, head_param_name


def _check_rates(lr: object) -> None:
    if not isinstance(lr, LearningRates):
        raise TypeError(f"lr: expected reference.optim.LearningRates, got {type(lr).__name__}")


@functools.lru_cache(maxsize=4096)
def _rate(lr: LearningRates, name: str) -> float:
    """The rate of parameter ``name``: a stacked head entry has its heads' group (``heads.s``: the
    temperatures). Cached: a step asks for every parameter's rate, and both arguments are immutable."""
    field_name = STACKED_HEAD_NAMES.get(name)
    return lr.for_name(name if field_name is None else head_param_name(0, field_name))


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

    def with_head(self, head_id: int) -> SGDState:
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

    def init_state(self, heads: HeadStack | None = None) -> SGDState:
        return SGDState()

    def state_from_reference(
        self, state: ref_optim.OptState, *, dtype: torch.dtype, device: str = "cpu", heads: HeadStack | None = None
    ) -> SGDState:
        """The reference's SGD state on the device (a step count: nothing to convert; ``heads`` as Adam's)."""
        check_dtype(dtype)
        check_device(device)
        return SGDState(steps=_own_state(self, state, ref_optim.SGDState).steps)

    def step(
        self, state: OptState, params: Mapping[str, Tensor], grads: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], SGDState]:
        state = _own_state(self, state, SGDState)
        _check_params_grads(params, grads)
        with torch.no_grad():
            new = {name: p - _rate(self.lr, name) * grads[name] for name, p in params.items()}
        return new, SGDState(steps=state.steps + 1)


@dataclass(frozen=True)
class AdamMoments:
    """Adam's state for one parameter: moment estimates and its own step count (as the reference)."""

    m: Tensor
    v: Tensor
    t: int


_NO_MOMENTS: Mapping[str, AdamMoments] = MappingProxyType({})


@dataclass(frozen=True, eq=False)
class HeadMoments:
    """Adam's state of the stacked head entries (``heads.W_Q`` …): ``m`` and ``v`` by stacked name, row
    ``i`` being head ``ids[i]``, and each head's own step count ``t[i]``."""

    ids: tuple[int, ...]
    t: tuple[int, ...]
    m: Mapping[str, Tensor]
    v: Mapping[str, Tensor]

    def __post_init__(self) -> None:
        if len(self.t) != len(self.ids):
            raise ValueError(f"t: expected one step count per head ({len(self.ids)}), got {len(self.t)}")
        for arg in ("m", "v"):
            moments = getattr(self, arg)
            if set(moments) != set(STACKED_HEAD_NAMES):
                raise ValueError(f"{arg}: expected the names {sorted(STACKED_HEAD_NAMES)}, got {sorted(moments)}")
            for name, x in moments.items():
                if x.shape[0] != len(self.ids):
                    raise ValueError(f"{arg}[{name!r}]: expected {len(self.ids)} rows, got shape {tuple(x.shape)}")
            object.__setattr__(self, arg, MappingProxyType({n: moments[n] for n in STACKED_HEAD_NAMES}))

    @staticmethod
    def zeros(heads: HeadStack) -> HeadMoments:
        """Zero moments and counts for ``heads`` (no step taken)."""
        stored = dict(zip(STACKED_HEAD_NAMES, heads.tensors(), strict=True))
        zero = {n: torch.zeros_like(x, memory_format=torch.contiguous_format) for n, x in stored.items()}
        return HeadMoments(heads.ids, (0,) * len(heads), zero, {n: z.clone() for n, z in zero.items()})

    def _rows(self, keep: list[int], born: tuple[int, ...] = ()) -> HeadMoments:
        """Rows ``keep`` (copies: the values bit for bit), then a zero row with count 0 per id in ``born``."""

        def rows(x: Tensor) -> Tensor:
            return torch.cat([x[keep], x.new_zeros((len(born), *x.shape[1:]))])

        return HeadMoments(
            tuple(self.ids[i] for i in keep) + born,
            tuple(self.t[i] for i in keep) + (0,) * len(born),
            {n: rows(x) for n, x in self.m.items()},
            {n: rows(x) for n, x in self.v.items()},
        )

    def with_head(self, head_id: int) -> HeadMoments:
        """A newborn head's rows appended: zero moments, count 0 (the head has taken no step)."""
        if self.ids and head_id <= self.ids[-1]:
            raise ValueError(f"head_id: a newborn's id must exceed every active id ({self.ids[-1]}), got {head_id}")
        return self._rows(list(range(len(self.ids))), (head_id,))

    def without_heads(self, head_ids: Collection[int]) -> HeadMoments:
        """The rows of every head but ``head_ids`` (the others' values bit for bit)."""
        return self._rows([i for i, h in enumerate(self.ids) if h not in head_ids])


def _count_runs(counts: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """``(start, stop, count)`` of each maximal run of consecutive rows with the same step count.

    torch's fused Adam takes one step count per tensor; a run's rows of a stacked tensor are one
    contiguous tensor (a slice along the leading axis) with one count. Heads are born in id order and
    step together, so the counts do not increase along the rows and there are as many runs as distinct
    birth steps (one in a run without births)."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(counts) + 1):
        if i == len(counts) or counts[i] != counts[start]:
            runs.append((start, i, counts[start]))
            start = i
    return runs


@dataclass(frozen=True)
class AdamState:
    """Per-parameter moments keyed by flat name (read-only mapping, ``moments``) and, when the stacked head
    entries are stepped, their stacked moments (``heads``)."""

    kind: ClassVar[OptimizerKind] = "adam"
    moments: Mapping[str, AdamMoments] = field(default_factory=dict)
    heads: HeadMoments | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "moments", MappingProxyType(dict(self.moments)))

    def without(self, names: Collection[str]) -> AdamState:
        """The state without the entries of ``names`` (a pruned head's), and without the stacked rows of
        any head named in them; every other entry the same object, every other row bit for bit."""
        moments = {k: v for k, v in self.moments.items() if k not in names}
        heads = self.heads
        if heads is not None:
            gone = {h for h in heads.ids if any(head_param_name(h, f) in names for f in HEAD_PARAM_NAMES)}
            heads = heads.without_heads(gone) if gone else heads
        return AdamState(moments, heads)

    def with_head(self, head_id: int) -> AdamState:
        """A newborn head's stacked rows appended (zero moments, count 0); without stacked moments, the
        state itself (flat names get their moments at their first step)."""
        return self if self.heads is None else replace(self, heads=self.heads.with_head(head_id))

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
        return AdamState(moments={**self.moments, name: resized}, heads=self.heads)

    def flat_moments(self) -> dict[str, AdamMoments]:
        """Every moment under the flat names, in the reference's order; a head that has taken no step has
        no entry (as in the reference, whose moments appear at a parameter's first step)."""
        out: dict[str, AdamMoments] = {}
        h = self.heads
        if h is None:
            return dict(self.moments)
        stepped = tuple(i for i, t in enumerate(h.t) if t > 0)
        ids = tuple(h.ids[i] for i in stepped)
        m = flat_from_leaves(ids, {n: h.m[n][list(stepped)] for n in STACKED_HEAD_NAMES})
        v = flat_from_leaves(ids, {n: h.v[n][list(stepped)] for n in STACKED_HEAD_NAMES})
        counts = {head_param_name(h.ids[i], f): h.t[i] for i in stepped for f in HEAD_PARAM_NAMES}
        dense = dict(self.moments)
        for name in ("W_in", "E_pos"):
            if name in dense:
                out[name] = dense.pop(name)
        out.update({n: AdamMoments(m=m[n], v=v[n], t=counts[n]) for n in m})
        out.update(dense)
        return out

    def to_reference(self) -> ref_optim.AdamState:
        """The moments as the reference's, under the flat names (float64 host copies: exact)."""
        return ref_optim.AdamState(
            moments={
                name: ref_optim.AdamMoments(m=arr(to_host(mom.m)), v=arr(to_host(mom.v)), t=mom.t)
                for name, mom in self.flat_moments().items()
            }
        )

    def named_tensors(self) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for name, mom in self.moments.items():
            out.update({f"{name}.m": mom.m, f"{name}.v": mom.v, f"{name}.t": torch.tensor(mom.t)})
        if self.heads is not None:
            for name in STACKED_HEAD_NAMES:
                out.update({f"{name}.m": self.heads.m[name], f"{name}.v": self.heads.v[name]})
            out.update({"heads.ids": torch.tensor(self.heads.ids), "heads.t": torch.tensor(self.heads.t)})
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

    def init_state(self, heads: HeadStack | None = None) -> AdamState:
        """No moments; with ``heads``, zero stacked moments for those heads (to step :func:`accelerated.
        backward.leaves`)."""
        return AdamState(heads=None if heads is None else HeadMoments.zeros(heads))

    def state_from_reference(
        self, state: ref_optim.OptState, *, dtype: torch.dtype, device: str = "cpu", heads: HeadStack | None = None
    ) -> AdamState:
        """The reference's Adam state on the device in ``dtype`` (exact when the moments are values of
        ``dtype``, as those :meth:`AdamState.to_reference` returns). With ``heads``, the moments of those
        heads are stacked (:class:`HeadMoments`; a head without moments, one not yet stepped, gets zero
        rows and count 0, which Adam's first step treats alike)."""
        check_dtype(dtype)
        check_device(device)

        def t(a: object) -> Tensor:
            return torch.tensor(a, dtype=dtype, device=device)

        ref = _own_state(self, state, ref_optim.AdamState).moments
        moments = {name: AdamMoments(m=t(mom.m), v=t(mom.v), t=mom.t) for name, mom in ref.items()}
        if heads is None:
            return AdamState(moments=moments)
        stacked = HeadMoments.zeros(heads.map(lambda _, x: x.detach().to(dtype=dtype, device=device)))
        m, v, counts = dict(stacked.m), dict(stacked.v), list(stacked.t)
        for i, hid in enumerate(heads.ids):
            names = {head_param_name(hid, f): f for f in HEAD_PARAM_NAMES}
            if not any(n in moments for n in names):
                continue
            if not all(n in moments for n in names) or len({moments[n].t for n in names}) != 1:
                raise ValueError(f"state: head {hid}'s five parameters must have moments with one step count")
            for name, f in names.items():
                mom = moments.pop(name)
                row = m[f"heads.{f}"][i]
                for arg, x in (("m", mom.m), ("v", mom.v)):  # an indexed assignment would broadcast
                    if tuple(x.shape) != tuple(row.shape):
                        raise ValueError(
                            f"state: moments[{name!r}].{arg} has shape {tuple(x.shape)}, not the parameter's "
                            f"{tuple(row.shape)}"
                        )
                m[f"heads.{f}"][i] = mom.m
                v[f"heads.{f}"][i] = mom.v
            counts[i] = ref[head_param_name(hid, "W_Q")].t
        return AdamState(moments=moments, heads=HeadMoments(heads.ids, tuple(counts), m, v))

    def step(
        self, state: OptState, params: Mapping[str, Tensor], grads: Mapping[str, Tensor]
    ) -> tuple[dict[str, Tensor], AdamState]:
        state = _own_state(self, state, AdamState)
        _check_params_grads(params, grads)
        names = list(params)  # names absent from params are dropped with their state
        dense = [n for n in names if n not in STACKED_HEAD_NAMES]
        heads = _stepped_heads(state, params, len(dense) < len(names))
        olds = []
        for name in dense:
            p = params[name]
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
            # contiguous copies: the kernel walks raw storage (autograd's gradients can be strided views)
            new = {n: params[n].detach().clone(memory_format=torch.contiguous_format) for n in names}
            m = {n: o.m.clone(memory_format=torch.contiguous_format) for n, o in zip(dense, olds, strict=True)}
            v = {n: o.v.clone(memory_format=torch.contiguous_format) for n, o in zip(dense, olds, strict=True)}
            # the kernel reads the step count after its increment (torch.optim.Adam increments first),
            # and only reads it: one count tensor serves every tensor at that count
            counts: dict[tuple[int, torch.device], Tensor] = {}

            def count_of(t: int, device: torch.device) -> Tensor:
                if (t, device) not in counts:
                    counts[t, device] = torch.tensor(float(t), dtype=torch.float32, device=device)
                return counts[t, device]

            work: list[tuple[float, Tensor, Tensor, Tensor, Tensor, Tensor]] = []
            for n, t in zip(dense, ts, strict=True):
                count = count_of(t, new[n].device)
                work.append((_rate(self.lr, n), new[n], grads[n].detach().contiguous(), m[n], v[n], count))
            new_heads = None
            if heads is not None:
                hm = {n: x.clone(memory_format=torch.contiguous_format) for n, x in heads.m.items()}
                hv = {n: x.clone(memory_format=torch.contiguous_format) for n, x in heads.v.items()}
                g = {n: grads[n].detach().contiguous() for n in STACKED_HEAD_NAMES}
                h_ts = tuple(t + 1 for t in heads.t)
                # a run of heads with one step count is one slice of each stacked tensor (see _count_runs)
                for a, b, t in _count_runs(h_ts):
                    count = count_of(t, new["heads.W_Q"].device)
                    for n in STACKED_HEAD_NAMES:
                        work.append((_rate(self.lr, n), new[n][a:b], g[n][a:b], hm[n][a:b], hv[n][a:b], count))
                new_heads = HeadMoments(heads.ids, h_ts, hm, hv)
            groups: dict[float, list[int]] = {}
            for i, item in enumerate(work):
                groups.setdefault(item[0], []).append(i)
            for lr, idx in groups.items():
                torch._fused_adam_(
                    [work[i][1] for i in idx],
                    [work[i][2] for i in idx],
                    [work[i][3] for i in idx],
                    [work[i][4] for i in idx],
                    [],
                    [work[i][5] for i in idx],
                    amsgrad=False,
                    lr=lr,
                    beta1=self.beta1,
                    beta2=self.beta2,
                    weight_decay=0.0,
                    eps=self.eps,
                    maximize=False,
                )
        new_moments = {n: AdamMoments(m=m[n], v=v[n], t=t) for n, t in zip(dense, ts, strict=True)}
        return new, AdamState(moments=new_moments, heads=new_heads)


def _stepped_heads(state: AdamState, params: Mapping[str, Tensor], stacked: bool) -> HeadMoments | None:
    """The stacked moments ``step`` updates: ``state.heads`` when ``params`` has the stacked head entries
    (all five, rows matching), ``None`` when it has none of them."""
    if not stacked:
        return None
    if state.heads is None or not set(STACKED_HEAD_NAMES) <= set(params):
        raise ValueError(
            "params: the stacked head entries (heads.W_Q, …) are stepped all five together, with a state "
            "holding their moments (Adam.init_state(heads) or Adam.state_from_reference(…, heads=…))"
        )
    for name in STACKED_HEAD_NAMES:
        if state.heads.m[name].shape != params[name].shape:
            raise ValueError(
                f"state: moments of {name!r} have shape {tuple(state.heads.m[name].shape)}, not "
                f"{tuple(params[name].shape)} (a birth or prune not applied to the state?)"
            )
    return state.heads


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


__all__ = ["SGD", "Adam", "AdamMoments", "AdamState", "HeadMoments", "OptState", "SGDState"]
