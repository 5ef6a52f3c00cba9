"""Surgery on the layer's parameter set: its flat view, and growing or pruning heads and prototypes.

* The flat view ``{name: array}`` (:func:`flatten`, :func:`unflatten`, :func:`params_from_arrays`) is what
  optimisers, finite-difference checks, run records and gradient comparisons see; names are stable
  (``W_in``, ``E_pos``, ``heads.{id}.{W_Q,W_K,W_V,W_O,s}``, ``P``, ``W_c``, ``b_c``), so a comparison with
  another implementation is a dictionary comparison.
* :func:`add_head` (SPEC §3.2), :func:`remove_head` (§3.3) and :func:`remove_prototype_column` (§3.5)
  return new parameter sets; ids of heads and prototypes are never reused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Literal, TypeAlias

import numpy as np

from reference._arrays import F64Array, check_array, check_rng, f64
from reference.ddcl import remove_prototype
from reference.model import HeadParams, LayerConfig, ModelParams, check_params, init_head

ParamGroup: TypeAlias = Literal["prototypes", "temperatures", "rest"]


HEAD_PARAM_NAMES: tuple[str, ...] = ("W_Q", "W_K", "W_V", "W_O", "s")


_HEAD_NAME = re.compile(r"heads\.(0|[1-9][0-9]*)\.(W_Q|W_K|W_V|W_O|s)")


def head_param_name(head_id: int, field_name: str) -> str:
    """The flat name ``heads.{id}.{field}`` of one head parameter."""
    if field_name not in HEAD_PARAM_NAMES:
        raise ValueError(f"field_name: expected one of {HEAD_PARAM_NAMES}, got {field_name!r}")
    return f"heads.{head_id}.{field_name}"


def head_param_names(head_id: int) -> frozenset[str]:
    """The flat names of every parameter of head ``head_id`` (what a pruned head takes with it)."""
    return frozenset(head_param_name(head_id, f) for f in HEAD_PARAM_NAMES)


def flatten(params: ModelParams) -> dict[str, F64Array]:
    """``{name: array}`` in paper order: W_in, E_pos, heads.{id}.{W_Q,W_K,W_V,W_O,s} by id, P, W_c, b_c.

    ``s`` appears as a 0-d array. The arrays are the (read-only) parameter arrays themselves.
    """
    flat: dict[str, F64Array] = {"W_in": params.W_in, "E_pos": params.E_pos}
    for hid, head in params.heads.items():
        flat[head_param_name(hid, "W_Q")] = head.W_Q
        flat[head_param_name(hid, "W_K")] = head.W_K
        flat[head_param_name(hid, "W_V")] = head.W_V
        flat[head_param_name(hid, "W_O")] = head.W_O
        flat[head_param_name(hid, "s")] = np.array(head.s, dtype=np.float64)
    flat["P"] = params.P
    flat["W_c"] = params.W_c
    flat["b_c"] = params.b_c
    return flat


def unflatten(flat: Mapping[str, F64Array], *, like: ModelParams) -> ModelParams:
    """The inverse of :func:`flatten`: ``flat`` must have exactly ``flatten(like)``'s names.

    Ids (``next_head_id``, ``prototype_ids``) are not arrays, so they are taken from ``like``.
    """
    expected = list(flatten(like))
    if sorted(flat) != sorted(expected):
        missing = sorted(set(expected) - set(flat))
        extra = sorted(set(flat) - set(expected))
        raise ValueError(f"flat: names must match the parameters of `like`; missing {missing}, unexpected {extra}")
    return params_from_arrays(flat, next_head_id=like.next_head_id, prototype_ids=like.prototype_ids)


def params_from_arrays(
    arrays: Mapping[str, F64Array], *, next_head_id: int, prototype_ids: tuple[int, ...]
) -> ModelParams:
    """:class:`ModelParams` from flat ``{name: array}`` (names as :func:`flatten` writes them) and the ids.

    The one constructor path for :func:`unflatten` and for loading a run record: the head ids are read
    off the ``heads.{id}.*`` names, each head must have all five of its parameters, and any other name
    is an error (the :class:`ModelParams` constructor then validates shapes and ids).
    """
    head_ids: set[int] = set()
    for name in arrays:
        match = _HEAD_NAME.fullmatch(name)
        if match is not None:
            head_ids.add(int(match.group(1)))
        elif name not in ("W_in", "E_pos", "P", "W_c", "b_c"):
            raise ValueError(f"arrays: {name!r} is not a parameter name of the layer (see reference.surgery.flatten)")
    heads: dict[int, HeadParams] = {}
    for hid in sorted(head_ids):
        names = [head_param_name(hid, f) for f in HEAD_PARAM_NAMES]
        missing = [n for n in names if n not in arrays]
        if missing:
            raise ValueError(f"arrays: head {hid} lacks {missing}")
        W_Q, W_K, W_V, W_O, s = (arrays[n] for n in names)
        heads[hid] = HeadParams(W_Q=W_Q, W_K=W_K, W_V=W_V, W_O=W_O, s=f64(check_array(names[4], s, 0)))
    for name in ("W_in", "E_pos", "P", "W_c", "b_c"):
        if name not in arrays:
            raise ValueError(f"arrays: the parameter {name!r} is missing")
    return ModelParams(
        W_in=arrays["W_in"],
        E_pos=arrays["E_pos"],
        heads=heads,
        next_head_id=next_head_id,
        P=arrays["P"],
        prototype_ids=prototype_ids,
        W_c=arrays["W_c"],
        b_c=arrays["b_c"],
    )


def param_group(name: str) -> ParamGroup:
    """Learning-rate group of a flat parameter name: ``P`` → prototypes, ``heads.*.s`` → temperatures.

    Prototypes and temperatures get their own step sizes (claim R3 studies the ratio η_enc/η_P).
    """
    if name == "P":
        return "prototypes"
    match = _HEAD_NAME.fullmatch(name)
    if match is not None:
        return "temperatures" if match.group(2) == "s" else "rest"
    if name in ("W_in", "E_pos", "W_c", "b_c"):
        return "rest"
    raise ValueError(f"name: {name!r} is not a parameter name of the layer (see reference.surgery.flatten)")


def add_head(
    params: ModelParams, cfg: LayerConfig, *, rng: np.random.Generator, head: HeadParams | None = None
) -> tuple[ModelParams, int]:
    """Grow: a new head with a fresh id, randomly initialised from ``rng`` — or ``head`` itself when
    given (a growth variant's newborn, :func:`reference.growth_phases.newborn_head`, drawn from that
    ``rng``); returns ``(params, id)``."""
    check_params(params, cfg)
    gen = check_rng(rng)
    new = init_head(cfg, gen) if head is None else head
    if not isinstance(new, HeadParams):
        raise TypeError(f"head: expected HeadParams, got {type(new).__name__}")
    new_id = params.next_head_id
    grown = replace(params, heads={**params.heads, new_id: new}, next_head_id=new_id + 1)
    return check_params(grown, cfg), new_id


def remove_head(params: ModelParams, head_id: int) -> ModelParams:
    """Prune head ``head_id``; its id is retired. The last active head cannot be removed."""
    if isinstance(head_id, bool) or not isinstance(head_id, (int, np.integer)):
        raise TypeError(f"head_id: expected an int, got {type(head_id).__name__}")
    if int(head_id) not in params.heads:
        raise ValueError(f"head_id: {head_id} is not an active head; active ids are {sorted(params.heads)}")
    if len(params.heads) == 1:
        raise ValueError(f"head_id: {head_id} is the only active head; the layer keeps at least one")
    heads = {hid: h for hid, h in params.heads.items() if hid != int(head_id)}
    return replace(params, heads=heads)


def prototype_column(params: ModelParams, proto_id: int) -> int:
    """Column index ``j`` of the active prototype with stable id ``proto_id``."""
    if isinstance(proto_id, bool) or not isinstance(proto_id, (int, np.integer)):
        raise TypeError(f"proto_id: expected an int, got {type(proto_id).__name__}")
    if int(proto_id) not in params.prototype_ids:
        raise ValueError(f"proto_id: {proto_id} is not an active prototype; active ids are {params.prototype_ids}")
    return params.prototype_ids.index(int(proto_id))


def remove_prototype_column(params: ModelParams, proto_id: int) -> ModelParams:
    """Prune prototype ``proto_id``: drop its column of ``P`` (needs K ≥ 2; claim D5 bounds the effect)."""
    j = prototype_column(params, proto_id)
    ids = params.prototype_ids[:j] + params.prototype_ids[j + 1 :]
    return replace(params, P=remove_prototype(params.P, j), prototype_ids=ids)


__all__ = [
    "HEAD_PARAM_NAMES",
    "ParamGroup",
    "add_head",
    "flatten",
    "head_param_name",
    "head_param_names",
    "param_group",
    "params_from_arrays",
    "prototype_column",
    "remove_head",
    "remove_prototype_column",
    "unflatten",
]
