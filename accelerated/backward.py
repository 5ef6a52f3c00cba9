"""Gradients of the accelerated layer by autograd (the mirror of :mod:`reference.backward`), its flat
view (the reference's names), and conversion from and to the reference's NumPy parameters.

``loss_and_gradients`` returns ``{name: ∂L/∂θ}`` keyed exactly like
:func:`reference.surgery.flatten`, so a differential test compares two dictionaries.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from accelerated.model import ForwardCache, HeadParams, LayerConfig, ModelParams, check_device, check_dtype, forward
from reference import model as ref_model
from reference.surgery import HEAD_PARAM_NAMES, head_param_name, params_from_arrays


def _check_params(params: object) -> ModelParams:
    if not isinstance(params, ModelParams):
        raise TypeError(f"params: expected accelerated.model.ModelParams, got {type(params).__name__}")
    return params


def flatten(params: ModelParams) -> dict[str, Tensor]:
    """``{name: tensor}`` in the reference's order and names (:func:`reference.surgery.flatten`)."""
    _check_params(params)
    flat: dict[str, Tensor] = {"W_in": params.W_in, "E_pos": params.E_pos}
    for hid, head in params.heads.items():
        for name in HEAD_PARAM_NAMES:
            flat[head_param_name(hid, name)] = getattr(head, name)
    flat["P"] = params.P
    flat["W_c"] = params.W_c
    flat["b_c"] = params.b_c
    return flat


def from_reference(params: ref_model.ModelParams, *, dtype: torch.dtype, device: str = "cpu") -> ModelParams:
    """The reference's parameters as tensors (same ids), each a fresh leaf that requires grad."""
    if not isinstance(params, ref_model.ModelParams):
        raise TypeError(f"params: expected reference.model.ModelParams, got {type(params).__name__}")
    check_dtype(dtype)
    check_device(device)

    def t(a: np.ndarray) -> Tensor:
        return torch.tensor(np.asarray(a), dtype=dtype, device=device).requires_grad_(True)

    heads = {
        hid: HeadParams(W_Q=t(h.W_Q), W_K=t(h.W_K), W_V=t(h.W_V), W_O=t(h.W_O), s=t(np.array(h.s)))
        for hid, h in params.heads.items()
    }
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
    flat = flatten(params)
    grads = torch.autograd.grad(cache.L, list(flat.values()))
    return cache, dict(zip(flat, grads, strict=True))


__all__ = [
    "flatten",
    "from_reference",
    "loss_and_gradients",
    "to_host",
    "to_numpy",
    "to_reference",
]
