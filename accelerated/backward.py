"""Gradients of the accelerated layer by autograd (the mirror of :mod:`reference.backward`), its two
views by name, and conversion from and to the reference's NumPy parameters.

* :func:`leaves`: the tensors a training step differentiates and updates, the heads stacked
  (``heads.W_Q`` H×d×d_k …, :data:`STACKED_HEAD_NAMES`);
* :func:`flatten`: the reference's flat names (``heads.{id}.W_Q`` …, views into the stacked rows), what
  comparisons, digests and the reference conversion read; :func:`flat_from_leaves` splits any
  ``leaves``-keyed dictionary (gradients) into it.

``loss_and_gradients`` returns ``{name: ∂L/∂θ}`` keyed exactly like :func:`reference.surgery.flatten`,
so a differential test compares two dictionaries.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from accelerated.model import ForwardCache, HeadStack, LayerConfig, ModelParams, check_device, check_dtype, forward
from reference import model as ref_model
from reference.surgery import HEAD_PARAM_NAMES, head_param_name, params_from_arrays


def _check_params(params: object) -> ModelParams:
    if not isinstance(params, ModelParams):
        raise TypeError(f"params: expected accelerated.model.ModelParams, got {type(params).__name__}")
    return params


STACKED_HEAD_NAMES: dict[str, str] = {f"heads.{f}": f for f in HEAD_PARAM_NAMES}
"""The names :func:`leaves` gives the stacked head tensors (``heads.W_Q`` …), to their field."""


def leaves(params: ModelParams) -> dict[str, Tensor]:
    """``{name: tensor}`` of the stored tensors, the heads stacked (``heads.W_Q`` H×d×d_k, …, ``heads.s``
    H), in the reference's order otherwise: what a training step differentiates and updates."""
    _check_params(params)
    out: dict[str, Tensor] = {"W_in": params.W_in, "E_pos": params.E_pos}
    out.update(zip(STACKED_HEAD_NAMES, params.heads.tensors(), strict=True))
    out.update(P=params.P, W_c=params.W_c, b_c=params.b_c)
    return out


def flat_from_leaves(head_ids: tuple[int, ...], stacked: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A :func:`leaves`-keyed dictionary (all five stacked head entries, rows in ``head_ids`` order) under
    the reference's flat names, in its order (the heads by id, then field, where the stacked entries
    stood), each head's entries views into its row."""
    flat: dict[str, Tensor] = {}
    for name, t in stacked.items():
        if name not in STACKED_HEAD_NAMES:
            flat[name] = t
        elif name == "heads.W_Q":
            rows = {f: stacked[n] for n, f in STACKED_HEAD_NAMES.items()}
            for f, r in rows.items():
                if r.shape[0] != len(head_ids):
                    raise ValueError(f"heads.{f}: expected {len(head_ids)} rows (one per head), got {tuple(r.shape)}")
            flat.update({head_param_name(h, f): r[i] for i, h in enumerate(head_ids) for f, r in rows.items()})
    return flat


def flatten(params: ModelParams) -> dict[str, Tensor]:
    """``{name: tensor}`` in the reference's order and names (:func:`reference.surgery.flatten`); a head's
    entries are views into its row of the stacked tensors."""
    _check_params(params)
    return flat_from_leaves(params.heads.ids, leaves(params))


def from_reference(params: ref_model.ModelParams, *, dtype: torch.dtype, device: str = "cpu") -> ModelParams:
    """The reference's parameters as tensors (same ids), each a fresh leaf that requires grad (the heads
    as the five stacked leaves of :class:`accelerated.model.HeadStack`)."""
    if not isinstance(params, ref_model.ModelParams):
        raise TypeError(f"params: expected reference.model.ModelParams, got {type(params).__name__}")
    check_dtype(dtype)
    check_device(device)

    def t(a: np.ndarray) -> Tensor:
        return torch.tensor(np.asarray(a), dtype=dtype, device=device).requires_grad_(True)

    ids = tuple(sorted(params.heads))
    heads = HeadStack(ids, *(t(np.stack([getattr(params.heads[h], f) for h in ids])) for f in HEAD_PARAM_NAMES))
    return ModelParams(
        W_in=t(params.W_in),
        E_pos=t(params.E_pos),
        heads=heads,
        next_head_id=params.next_head_id,
        P=t(params.P),
        prototype_ids=params.prototype_ids,
        W_c=t(params.W_c),
        b_c=t(params.b_c),
    )


def to_reference(params: ModelParams) -> ref_model.ModelParams:
    """The tensors as the reference's float64 parameters (same ids), through the reference's one
    constructor path :func:`reference.surgery.params_from_arrays`."""
    _check_params(params)
    arrays = to_numpy(flatten(params))
    return params_from_arrays(arrays, next_head_id=params.next_head_id, prototype_ids=params.prototype_ids)


def to_host(t: Tensor) -> np.ndarray:
    """A detached float64 NumPy copy of a tensor on the host (the one device → host conversion)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"t: expected a torch.Tensor, got {type(t).__name__}")
    return t.detach().to("cpu", torch.float64).numpy()


def to_numpy(flat: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """Detached float64 NumPy copies of a flat dictionary (for comparisons with the reference)."""
    return {name: to_host(v) for name, v in flat.items()}


def loss_and_gradients(
    params: ModelParams, cfg: LayerConfig, x: Tensor, labels: Tensor, *, check_inputs: bool = True
) -> tuple[ForwardCache, dict[str, Tensor]]:
    """:func:`accelerated.model.forward` and ``∂L/∂θ`` for every parameter by autograd, keyed like :func:`flatten`."""
    cache = forward(params, cfg, x, labels, check_inputs=check_inputs)
    stored = leaves(params)
    grads = torch.autograd.grad(cache.L, list(stored.values()))
    return cache, flat_from_leaves(params.heads.ids, dict(zip(stored, grads, strict=True)))


__all__ = [
    "STACKED_HEAD_NAMES",
    "flat_from_leaves",
    "flatten",
    "from_reference",
    "leaves",
    "loss_and_gradients",
    "to_host",
    "to_numpy",
    "to_reference",
]
