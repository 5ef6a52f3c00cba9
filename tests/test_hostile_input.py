"""Hostile-input fuzz of every public array entry point (issue 10, Build item 4).

One table (:data:`ENTRY_POINTS`): each row is an entry point, a builder of valid arguments from a seed,
and which of its arguments are arrays, temperatures/scalars or objects. Hypothesis draws a row's valid
arguments and one corruption of one argument (:data:`ARRAY_CORRUPTIONS`, :data:`SCALAR_CORRUPTIONS`,
``wrong type``), or none. The property:

* either the call raises ``ValueError``/``TypeError``/``FloatingPointError`` whose message names one of
  the function's arguments (never a bare ``KeyError``, ``AttributeError``, ``IndexError``,
  ``OverflowError``, ``ZeroDivisionError``, ``numpy.linalg.LinAlgError`` or a NumPy warning from deep
  inside), or
* it returns a result in which every float is finite (a row may declare a documented ``inf``, with the
  reason).

A new entry point is one row. Every entry point's test checks that at least one example reached it;
the examples run per entry point are written as JSON to ``$DDCL_FUZZ_COUNTS_OUT`` when set.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jaxtyping
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from accelerated import model as amodel
from ddcl_incrt.strategies import ddcl as sddcl
from ddcl_incrt.strategies import incrt as sincrt
from ddcl_incrt.strategies import model as smodel
from reference import backward as rback
from reference import dcl, ddcl
from reference import model as rmodel
from reference.incrt import capture as rcap
from reference.incrt import controller as rctl
from reference.incrt import operators as rops
from reference.incrt import trackers as rtrk
from reference.invariants import coupling as icoup
from reference.invariants import ddcl as iddcl
from reference.invariants import incrt as iincrt
from reference.invariants import pruning as iprune
from reference.invariants.result import InvariantResult
from training import data as rdata

Args = dict[str, Any]

# ==================================================================================================
# Valid arguments
# ==================================================================================================


def _problem(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    n, d, K = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    return rng.standard_normal((n, d)), rng.standard_normal((d, K)), float(10.0 ** rng.uniform(-1, 1))


def _ddcl_Y_P_T(rng: np.random.Generator) -> Args:
    Y, P, T = _problem(rng)
    return {"Y": Y, "P": P, "T_P": T}


def _ddcl_Y_P(rng: np.random.Generator) -> Args:
    Y, P, _ = _problem(rng)
    return {"Y": Y, "P": P}


def _ddcl_Y_P_Q(rng: np.random.Generator) -> Args:
    Y, P, T = _problem(rng)
    return {"Y": Y, "P": P, "Q": ddcl.assignments(Y, P, T)}


def _ddcl_D_T(rng: np.random.Generator) -> Args:
    Y, P, T = _problem(rng)
    return {"D": ddcl.squared_distances(Y, P), "T_P": T}


def _ddcl_Q(rng: np.random.Generator) -> Args:
    Y, P, T = _problem(rng)
    return {"Q": ddcl.assignments(Y, P, T)}


def _ddcl_P_Q(rng: np.random.Generator) -> Args:
    Y, P, T = _problem(rng)
    return {"P": P, "Q": ddcl.assignments(Y, P, T)}


def _ddcl_Y(rng: np.random.Generator) -> Args:
    return {"Y": _problem(rng)[0]}


def _ddcl_Y_P_G(rng: np.random.Generator) -> Args:
    Y, P, _ = _problem(rng)
    return {"Y": Y, "P": P, "G": rng.standard_normal((Y.shape[0], P.shape[1]))}


def _ddcl_step(rng: np.random.Generator) -> Args:
    return {**_ddcl_Y_P_T(rng), "eta": 0.1}


def _ddcl_remove(rng: np.random.Generator) -> Args:
    _, P, _ = _problem(rng)
    P = np.hstack([P, rng.standard_normal((P.shape[0], 1))])
    return {"P": P, "j": 0}


def _ddcl_removal_change(rng: np.random.Generator) -> Args:
    Y, P, T = _problem(rng)
    P = np.hstack([P, rng.standard_normal((P.shape[0], 1))])
    return {"Q": ddcl.assignments(Y, P, T), "j": 0, "T_P": T}


def _ddcl_prune(rng: np.random.Generator) -> Args:
    return {**_ddcl_Y_P_T(rng), "j": 0}


def _ddcl_check_assignments(rng: np.random.Generator) -> Args:
    Q = _ddcl_Q(rng)["Q"]
    return {"Q": Q, "n": Q.shape[0], "K": Q.shape[1]}


def _dcl(rng: np.random.Generator) -> Args:
    n, d, K = int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    return {
        "Y_b": rng.standard_normal((n, d)),
        "W": rng.standard_normal((n, K)),
        "b": rng.standard_normal(K),
        "grad_P": rng.standard_normal((d, K)),
        "eta": 0.1,
    }


def _only(builder: Callable[[np.random.Generator], Args], *names: str) -> Callable[[np.random.Generator], Args]:
    def build(rng: np.random.Generator) -> Args:
        full = builder(rng)
        return {k: full[k] for k in names}

    return build


def _layer(rng: np.random.Generator) -> tuple[rmodel.LayerConfig, rmodel.ModelParams, np.ndarray, np.ndarray]:
    cfg = rmodel.LayerConfig(
        d_in=2, d=3, d_k=2, d_v=2, seq_len=int(rng.integers(1, 4)), K_max=3, n_classes=2, T_P=1.0, lambda_q=0.5
    )
    params = rmodel.init_params(cfg, rng=rng)
    B = int(rng.integers(1, 3))
    x = rng.standard_normal((B, cfg.seq_len, cfg.d_in))
    labels = rng.integers(0, cfg.n_classes, size=B)
    return cfg, params, x, labels


def _forward(rng: np.random.Generator) -> Args:
    cfg, params, x, labels = _layer(rng)
    return {"params": params, "cfg": cfg, "x": x, "labels": labels}


def _layer_config(rng: np.random.Generator) -> Args:
    return {
        "d_in": 2,
        "d": 3,
        "d_k": 2,
        "d_v": 2,
        "seq_len": 2,
        "K_max": 3,
        "n_classes": 2,
        "T_P": float(10.0 ** rng.uniform(-1, 1)),
        "lambda_q": 0.5,
        "s_init": float(rng.uniform(-1, 1)),
    }


def _head_params(rng: np.random.Generator) -> Args:
    return {
        "W_Q": rng.standard_normal((3, 2)),
        "W_K": rng.standard_normal((3, 2)),
        "W_V": rng.standard_normal((3, 2)),
        "W_O": rng.standard_normal((2, 3)),
        "s": float(rng.uniform(-1, 1)),
    }


def _model_params(rng: np.random.Generator) -> Args:
    _, params, _, _ = _layer(rng)
    return {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}


def _head_and_X(rng: np.random.Generator) -> Args:
    _, params, x, _ = _layer(rng)
    return {"head": params.heads[0], "X": rmodel.layer_input(params, x)}


def _scores(rng: np.random.Generator) -> Args:
    a = _head_and_X(rng)
    return {"X": a["X"], "M": rmodel.score_operator(a["head"])}


def _head_output(rng: np.random.Generator) -> Args:
    a = _head_and_X(rng)
    c = rmodel.head_forward(a["head"], a["X"])
    return {"A_h": c.A, "X": a["X"], "W_V": a["head"].W_V, "W_O": a["head"].W_O}


def _readout_args(rng: np.random.Generator) -> Args:
    cfg, params, x, labels = _layer(rng)
    c = rmodel.forward(params, cfg, x, labels)
    return {"Z": c.Z, "W_c": params.W_c, "b_c": params.b_c}


def _cross_entropy(rng: np.random.Generator) -> Args:
    cfg, params, x, labels = _layer(rng)
    return {"log_probs": rmodel.forward(params, cfg, x, labels).log_probs, "labels": labels}


def _accelerated_forward(dtype: torch.dtype) -> Callable[[np.random.Generator], Args]:
    def build(rng: np.random.Generator) -> Args:
        cfg, _, x, labels = _layer(rng)
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**31)))
        params = amodel.init_params(cfg, generator=gen, dtype=dtype)
        x_ = x.astype(np.float32) if dtype == torch.float32 else x
        return {"params": params, "cfg": cfg, "x": x_, "labels": labels}

    return build


def _sym(rng: np.random.Generator, d: int) -> np.ndarray:
    G = rng.standard_normal((d, d))
    out: np.ndarray = 0.5 * (G + G.T)
    return out


def _antisym(rng: np.random.Generator, d: int) -> np.ndarray:
    G = rng.standard_normal((d, d))
    out: np.ndarray = 0.5 * (G - G.T)
    return out


def _d(rng: np.random.Generator) -> int:
    return int(rng.integers(1, 5))


def _basis(rng: np.random.Generator, d: int) -> np.ndarray:
    m = int(rng.integers(0, d + 1))
    Qf, _ = np.linalg.qr(rng.standard_normal((d, d)))
    out: np.ndarray = Qf[:, :m]
    return out


def _incrt_X(rng: np.random.Generator) -> Args:
    return {"X": rng.standard_normal((int(rng.integers(1, 6)), _d(rng)))}


def _incrt_A(rng: np.random.Generator) -> Args:
    return {"A": _sym(rng, _d(rng))}


def _incrt_M(rng: np.random.Generator) -> Args:
    return {"M": rng.standard_normal((_d(rng),) * 2)}


def _incrt_Ms(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {"Ms": [rng.standard_normal((d, d)) for _ in range(int(rng.integers(1, 3)))]}


def _incrt_C_Ma(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {"C": rops.second_moment(rng.standard_normal((4, d))), "M_a": _antisym(rng, d)}


def _incrt_C_Mah(rng: np.random.Generator) -> Args:
    a = _incrt_C_Ma(rng)
    return {"C": a["C"], "M_a_h": a["M_a"]}


def _incrt_residual(rng: np.random.Generator) -> Args:
    a = _incrt_C_Ma(rng)
    return {**a, "Q_cap": _basis(rng, a["C"].shape[0])}


def _incrt_deflate(rng: np.random.Generator) -> Args:
    A = _sym(rng, _d(rng))
    return {"A": A, "Q_cap": _basis(rng, A.shape[0])}


def _incrt_projector(rng: np.random.Generator) -> Args:
    return {"Q_cap": _basis(rng, _d(rng))}


def _incrt_spectral(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {"V": np.linalg.qr(rng.standard_normal((d, d)))[0], "eigenvalues": rng.standard_normal(d)}


def _incrt_theta(rng: np.random.Generator) -> Args:
    return {"A": _sym(rng, _d(rng)), "theta": float(10.0 ** rng.uniform(-2, 0))}


def _incrt_tracked(rng: np.random.Generator) -> Args:
    return {**_incrt_theta(rng), "rng": np.random.default_rng(0), "n_steps": 20}


def _incrt_append(rng: np.random.Generator) -> Args:
    d = int(rng.integers(2, 5))
    Qf, _ = np.linalg.qr(rng.standard_normal((d, d)))
    m = int(rng.integers(0, d))
    return {"Q_cap": Qf[:, :m], "u": Qf[:, m]}


def _incrt_rank(rng: np.random.Generator) -> Args:
    return {"Q": _basis(rng, _d(rng))}


def _tracker(rng: np.random.Generator) -> Args:
    d = _d(rng)
    A = _sym(rng, d)
    return {"A": A, "w0": rng.standard_normal(d), "eta": rtrk.certified_step(A), "n_steps": 10}


def _tracker_result(rng: np.random.Generator) -> Args:
    a = _tracker(rng)
    return {"A": a["A"], "tracker": rtrk.oja_track(a["A"], a["w0"], a["eta"], a["n_steps"])}


def _angle(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {"v": rng.standard_normal(d), "w": rng.standard_normal(d)}


def _grow_check(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {
        "state": rctl.initial_state(d, K_max=3),
        "config": rctl.GrowthConfig(theta=0.5, phi_g=0.01, T_d=0, T_prune=1, eps_K=0.01),
        "A_res": _sym(rng, d),
        "step": 1,
        "new_head_id": 1,
    }


def _prune_check(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {
        "state": rctl.initial_state(d, K_max=3),
        "config": rctl.GrowthConfig(theta=0.5, phi_g=0.01, T_d=0, T_prune=1, eps_K=0.01),
        "C": rops.second_moment(rng.standard_normal((4, d))),
        "head_operators": {0: _antisym(rng, d)},
        "step": 1,
    }


def _proto_prune(rng: np.random.Generator) -> Args:
    mass = rng.uniform(0.0, 1.0, size=3)
    return {
        "state": rctl.initial_state(2, K_max=3),
        "config": rctl.GrowthConfig(theta=0.5, phi_g=0.01, T_d=0, T_prune=1, eps_K=0.2),
        "mass": mass / mass.sum(),
        "step": 1,
    }


def _calibrate(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {"operators": [_sym(rng, d) for _ in range(3)]}


def _capture_case(rng: np.random.Generator) -> Args:
    a = _incrt_theta(rng)
    return {**a, "capture": rcap.greedy_capture(a["A"], a["theta"])}


def _g3(rng: np.random.Generator) -> Args:
    return {**_capture_case(rng), "rng": np.random.default_rng(0), "n_random": 4}


def _grow_decision(rng: np.random.Generator) -> Args:
    a = _grow_check(rng)
    ext = rops.exact_extremes(a.pop("A_res"))
    return {**a, "top": (ext.lam_max, ext.u_max)}


def _d4(rng: np.random.Generator) -> Args:
    return {"Y": _problem(rng)[0], "K": int(rng.integers(1, 4)), "T_P": float(10.0 ** rng.uniform(-1, 1))}


def _g1(rng: np.random.Generator) -> Args:
    c = _capture_case(rng)["capture"]
    return {"Q_cap": c.Q_cap, "ranks": list(c.ranks), "theta": 0.5}


def _g4(rng: np.random.Generator) -> Args:
    c = _capture_case(rng)
    return {"A": c["A"], "theta": c["theta"], "captures": (c["capture"], c["capture"])}


def _g5(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {
        "C": rops.second_moment(rng.standard_normal((4, d))),
        "head_operators": (_antisym(rng, d), _antisym(rng, d)),
        "h": 0,
        "Q_cap": _basis(rng, d),
        "theta": 10.0,
    }


def _r1a(rng: np.random.Generator) -> Args:
    n, d = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    Y = rng.standard_normal((n, d))
    return {"Y": Y, "U": rng.standard_normal((n, d)), "Q": _stochastic(rng, n)}


def _stochastic(rng: np.random.Generator, n: int) -> np.ndarray:
    W = rng.uniform(0.1, 1.0, size=(n, 2))
    out: np.ndarray = W / W.sum(axis=1, keepdims=True)
    return out


def _head_output_bound(rng: np.random.Generator) -> Args:
    a = _head_output(rng)
    return {"X": a["X"], "W_V": a["W_V"], "W_O": a["W_O"]}


def _lipschitz(rng: np.random.Generator) -> Args:
    _, P, T = _problem(rng)
    return {"P": P, "T_P": T}


def _task_change(rng: np.random.Generator) -> Args:
    cfg, params, x, _ = _layer(rng)
    return {"dY": rng.standard_normal((x.shape[0], cfg.seq_len, cfg.d)), "P": params.P, "T_P": 1.0, "W_c": params.W_c}


def _backward_case(rng: np.random.Generator) -> tuple[rmodel.ModelParams, rmodel.ForwardCache, np.ndarray]:
    cfg, params, x, labels = _layer(rng)
    cache = rmodel.forward(params, cfg, x, labels)
    return params, cache, rng.standard_normal(cache.Y.shape)


def _bw_cross_entropy(rng: np.random.Generator) -> Args:
    _, cache, _ = _backward_case(rng)
    return {"log_probs": cache.log_probs, "labels": cache.labels}


def _bw_readout(rng: np.random.Generator) -> Args:
    params, cache, _ = _backward_case(rng)
    dlogits = rback.cross_entropy_backward(cache.log_probs, cache.labels)
    return {"z_bar": cache.z_bar, "W_c": params.W_c, "dlogits": dlogits, "T": cache.Y.shape[1]}


def _bw_ddcl_block(rng: np.random.Generator) -> Args:
    params, cache, _ = _backward_case(rng)
    Y = cache.tokens()
    return {"Y": Y, "P": params.P, "Q": cache.Q, "T_P": cache.T_P, "dZ": rng.standard_normal(Y.shape)}


def _bw_head(rng: np.random.Generator) -> Args:
    params, cache, dH = _backward_case(rng)
    return {"head": params.heads[0], "X": cache.X, "cache": cache.heads[0], "dH": dH}


def _bw_softmax(rng: np.random.Generator) -> Args:
    _, cache, _ = _backward_case(rng)
    A = cache.heads[0].A
    return {"A": A, "dA": rng.standard_normal(A.shape)}


def _bw_scores(rng: np.random.Generator) -> Args:
    _, cache, _ = _backward_case(rng)
    hc = cache.heads[0]
    return {"X": cache.X, "M": hc.M, "dS": rng.standard_normal(hc.A.shape)}


def _bw_score_operator(rng: np.random.Generator) -> Args:
    params, _, _ = _backward_case(rng)
    d = params.W_in.shape[1]
    return {"head": params.heads[0], "dM": rng.standard_normal((d, d))}


def _bw_layer_input(rng: np.random.Generator) -> Args:
    _, cache, dH = _backward_case(rng)
    return {"x": cache.x, "dX": dH}


def _rayleigh(rng: np.random.Generator) -> Args:
    d = _d(rng)
    return {"A": rng.standard_normal((d, d)), "w": rng.standard_normal(d)}


def _exin_limit(rng: np.random.Generator) -> Args:
    # d >= 2: for d = 1 the spread λ_max − λ_min is 0 and the documented bound is +inf (any step is safe)
    d = max(_d(rng), 2)
    return {"A": _sym(rng, d), "w0": rng.standard_normal(d)}


# ==================================================================================================
# The table
# ==================================================================================================


@dataclass(frozen=True)
class EntryPoint:
    """One public entry point: ``fn(**build(rng))`` is a valid call.

    ``arrays`` are corrupted with :data:`ARRAY_CORRUPTIONS`, ``scalars`` with :data:`SCALAR_CORRUPTIONS`
    and every argument may be replaced by an object of the wrong type. ``inf_ok`` documents an
    entry point whose result may legitimately be infinite (and why)."""

    name: str
    fn: Callable[..., Any]
    build: Callable[[np.random.Generator], Args]
    arrays: tuple[str, ...] = ()
    scalars: tuple[str, ...] = ()
    inf_ok: str = ""
    tensors: tuple[str, ...] = ()  # arrays passed to the function as torch tensors (accelerated rows)


E = EntryPoint
YP, YPQ = ("Y", "P"), ("Y", "P", "Q")
ENTRY_POINTS: tuple[EntryPoint, ...] = (
    # reference.ddcl
    E("ddcl.squared_distances", ddcl.squared_distances, _ddcl_Y_P, YP),
    E("ddcl.soft_assignments", ddcl.soft_assignments, _ddcl_D_T, ("D",), ("T_P",)),
    E("ddcl.assignments", ddcl.assignments, _ddcl_Y_P_T, YP, ("T_P",)),
    E("ddcl.quantisation_loss", ddcl.quantisation_loss, _ddcl_Y_P_Q, YPQ),
    E("ddcl.ols_loss", ddcl.ols_loss, _ddcl_Y_P_Q, YPQ),
    E("ddcl.prototype_variance", ddcl.prototype_variance, _ddcl_P_Q, ("P", "Q")),
    E("ddcl.free_energy", ddcl.free_energy, _ddcl_Y_P_T, YP, ("T_P",)),
    E("ddcl.mean_entropy", ddcl.mean_entropy, _ddcl_Q, ("Q",)),
    E("ddcl.assignment_covariance", ddcl.assignment_covariance, _ddcl_Q, ("Q",)),
    E("ddcl.check_assignments", ddcl.check_assignments, _ddcl_check_assignments, ("Q",), ("n", "K")),
    E("ddcl.collapse_critical_temperatures", ddcl.collapse_critical_temperatures, _ddcl_Y, ("Y",)),
    E("ddcl.pullback_distances", ddcl.pullback_distances, _ddcl_Y_P_G, ("Y", "P", "G")),
    E("ddcl.grad_quantisation_fixed_Q", ddcl.grad_quantisation_fixed_Q, _ddcl_Y_P_Q, YPQ),
    E("ddcl.grad_free_energy", ddcl.grad_free_energy, _ddcl_Y_P_T, YP, ("T_P",)),
    E("ddcl.quantisation_distance_weights", ddcl.quantisation_distance_weights, _ddcl_D_T, ("D",), ("T_P",)),
    E("ddcl.grad_quantisation_full", ddcl.grad_quantisation_full, _ddcl_Y_P_T, YP, ("T_P",)),
    E("ddcl.grad_variance_fixed_Q", ddcl.grad_variance_fixed_Q, _ddcl_P_Q, ("P", "Q")),
    E("ddcl.hessian_free_energy", ddcl.hessian_free_energy, _ddcl_Y_P_T, YP, ("T_P",)),
    E("ddcl.hessian_quantisation", ddcl.hessian_quantisation, _ddcl_Y_P_T, YP, ("T_P",)),
    E("ddcl.prototype_step", ddcl.prototype_step, _ddcl_step, YP, ("T_P", "eta")),
    E("ddcl.remove_prototype", ddcl.remove_prototype, _ddcl_remove, ("P",), ("j",)),
    E(
        "ddcl.removal_free_energy_change",
        ddcl.removal_free_energy_change,
        _ddcl_removal_change,
        ("Q",),
        ("j", "T_P"),
        inf_ok="documented: ΔF and its bound are +inf when a token is assigned to prototype j alone (q_tj = 1)",
    ),
    # reference.dcl
    E("dcl.dcl_prototypes", dcl.dcl_prototypes, _only(_dcl, "Y_b", "W", "b"), ("Y_b", "W", "b")),
    E("dcl.dcl_gradients", dcl.dcl_gradients, _only(_dcl, "Y_b", "grad_P"), ("Y_b", "grad_P")),
    E("dcl.dcl_preconditioner", dcl.dcl_preconditioner, _only(_dcl, "Y_b"), ("Y_b",)),
    E("dcl.dcl_step", dcl.dcl_step, _dcl, ("Y_b", "W", "b", "grad_P"), ("eta",)),
    # reference.model and reference.backward
    E("model.LayerConfig", rmodel.LayerConfig, _layer_config, (), ("d", "seq_len", "T_P", "lambda_q", "s_init")),
    E("model.HeadParams", rmodel.HeadParams, _head_params, ("W_Q", "W_K", "W_V", "W_O"), ("s",)),
    E("model.ModelParams", rmodel.ModelParams, _model_params, ("W_in", "E_pos", "P", "W_c", "b_c"), ("next_head_id",)),
    E("model.forward", rmodel.forward, _forward, ("x", "labels")),
    E("backward.loss_and_gradients", rback.loss_and_gradients, _forward, ("x", "labels")),
    E("backward.cross_entropy_backward", rback.cross_entropy_backward, _bw_cross_entropy, ("log_probs", "labels")),
    E("backward.readout_backward", rback.readout_backward, _bw_readout, ("z_bar", "W_c", "dlogits"), ("T",)),
    E("backward.ddcl_block_backward", rback.ddcl_block_backward, _bw_ddcl_block, ("Y", "P", "Q", "dZ"), ("T_P",)),
    E("backward.head_backward", rback.head_backward, _bw_head, ("X", "dH")),
    E("backward.softmax_rows_backward", rback.softmax_rows_backward, _bw_softmax, ("A", "dA")),
    E("backward.attention_scores_backward", rback.attention_scores_backward, _bw_scores, ("X", "M", "dS")),
    E("backward.score_operator_backward", rback.score_operator_backward, _bw_score_operator, ("dM",)),
    E("backward.layer_input_backward", rback.layer_input_backward, _bw_layer_input, ("x", "dX")),
    E("model.layer_input", rmodel.layer_input, _only(_forward, "params", "x"), ("x",)),
    E("model.score_operator", rmodel.score_operator, _only(_head_and_X, "head")),
    E("model.head_forward", rmodel.head_forward, _head_and_X, ("X",)),
    E("model.softmax_rows", rmodel.softmax_rows, lambda rng: {"S": rng.standard_normal((2, 3, 3))}, ("S",)),
    E("model.attention_scores", rmodel.attention_scores, _scores, ("X", "M")),
    E("model.head_output", rmodel.head_output, _head_output, ("A_h", "X", "W_V", "W_O")),
    E("model.ddcl_block", rmodel.ddcl_block, _ddcl_Y_P_T, YP, ("T_P",)),
    E("model.readout", rmodel.readout, _readout_args, ("Z", "W_c", "b_c")),
    E("model.log_softmax", rmodel.log_softmax, lambda rng: {"logits": rng.standard_normal((3, 4))}, ("logits",)),
    E("model.cross_entropy", rmodel.cross_entropy, _cross_entropy, ("log_probs", "labels")),
    # accelerated.model.forward with its input checks on (float64 parameters)
    E(
        "accelerated.forward float64",
        amodel.forward,
        _accelerated_forward(torch.float64),
        ("x", "labels"),
        tensors=("x", "labels"),
    ),
    E(
        "accelerated.forward float32",
        amodel.forward,
        _accelerated_forward(torch.float32),
        ("x", "labels"),
        tensors=("x", "labels"),
    ),
    # reference.incrt: operators
    E("incrt.second_moment", rops.second_moment, _incrt_X, ("X",)),
    E("incrt.antisymmetric_part", rops.antisymmetric_part, _incrt_M, ("M",)),
    E("incrt.directional_operator", rops.directional_operator, _incrt_Ms),
    E("incrt.complement_projector", rops.complement_projector, _incrt_projector, ("Q_cap",)),
    E("incrt.commutator_form", rops.commutator_form, _incrt_C_Ma, ("C", "M_a")),
    E("incrt.deflate", rops.deflate, _incrt_deflate, ("A", "Q_cap")),
    E("incrt.residual_operator", rops.residual_operator, _incrt_residual, ("C", "M_a", "Q_cap")),
    E("incrt.head_strength", rops.head_strength, _incrt_C_Mah, ("C", "M_a_h")),
    E("incrt.spectral_operator", rops.spectral_operator, _incrt_spectral, ("V", "eigenvalues")),
    E("incrt.exact_extremes", rops.exact_extremes, _incrt_A, ("A",)),
    E("incrt.eigenvalues_desc", rops.eigenvalues_desc, _incrt_A, ("A",)),
    E("incrt.count_above", rops.count_above, _incrt_theta, ("A",), ("theta",)),
    E(
        "incrt.eigh_error_bound",
        rops.eigh_error_bound,
        _incrt_A,
        ("A",),
        inf_ok="documented: an a-priori bound whose scale overflows is +inf (uncertified), never a silent NaN",
    ),
    # reference.incrt: capture and trackers
    E("incrt.greedy_capture", rcap.greedy_capture, _incrt_theta, ("A",), ("theta",)),
    E("incrt.greedy_capture_tracked", rcap.greedy_capture_tracked, _incrt_tracked, ("A",), ("theta", "n_steps")),
    E("incrt.append_direction", rcap.append_direction, _incrt_append, ("Q_cap", "u")),
    E("incrt.numerical_rank", rcap.numerical_rank, _incrt_rank, ("Q",)),
    E("incrt.oja_track", rtrk.oja_track, _tracker, ("A", "w0"), ("eta", "n_steps")),
    E("incrt.mca_exin_track", rtrk.mca_exin_track, _tracker, ("A", "w0"), ("eta", "n_steps")),
    E("incrt.certified_step", rtrk.certified_step, _incrt_A, ("A",)),
    E("incrt.rayleigh", rtrk.rayleigh, _rayleigh, ("A", "w")),
    E("incrt.mca_exin_step_limit", rtrk.mca_exin_step_limit, _exin_limit, ("A", "w0")),
    E("incrt.tracker_tan_bound", rtrk.tracker_tan_bound, _only(_tracker_result, "A"), ("A",)),
    E("incrt.angle", rtrk.angle, _angle, ("v", "w")),
    # reference.incrt: controller decisions
    E("controller.grow_check", rctl.grow_check, _grow_check, ("A_res",), ("step", "new_head_id")),
    E("controller.grow_decision", rctl.grow_decision, _grow_decision, (), ("step", "new_head_id")),
    E("controller.prune_check", rctl.prune_check, _prune_check, ("C",), ("step",)),
    E("controller.prototype_prune_check", rctl.prototype_prune_check, _proto_prune, ("mass",), ("step",)),
    E("controller.calibrate_thresholds", rctl.calibrate_thresholds, _calibrate),
    # reference.invariants
    E("invariants.d1_decomposition", iddcl.d1_decomposition, _ddcl_Y_P_Q, YPQ),
    E("invariants.d2_free_energy_gradients", iddcl.d2_free_energy_gradients, _ddcl_Y_P_T, YP, ("T_P",)),
    E("invariants.d3_lyapunov", iddcl.d3_lyapunov, _ddcl_step, YP, ("T_P", "eta")),
    E("invariants.d4_anti_collapse", iddcl.d4_anti_collapse, _d4, ("Y",), ("K", "T_P")),
    E("invariants.d5_prototype_pruning", iddcl.d5_prototype_pruning, _ddcl_prune, YP, ("T_P", "j")),
    E("invariants.d6_dual_vanilla", iddcl.d6_dual_vanilla, _dcl, ("Y_b", "W", "b", "grad_P"), ("eta",)),
    E("invariants.collapse_status", iddcl.collapse_status, _only(_ddcl_Y_P_T, "Y", "T_P"), ("Y",), ("T_P",)),
    E("invariants.check_g1", iincrt.check_g1, _g1, ("Q_cap",), ("theta",)),
    E("invariants.check_g2", iincrt.check_g2, _capture_case, ("A",), ("theta",)),
    E("invariants.check_g3", iincrt.check_g3, _g3, ("A",), ("theta", "n_random")),
    E("invariants.check_g4", iincrt.check_g4, _g4, ("A",), ("theta",)),
    E("invariants.check_g6", iincrt.check_g6, _tracker_result, ("A",)),
    E("invariants.check_g5", iprune.check_g5, _g5, ("C", "Q_cap"), ("theta", "h")),
    E("invariants.r1a_orthogonal_split", icoup.r1a_orthogonal_split, _r1a, ("Y", "U", "Q")),
    E("invariants.head_output_bound", iprune.head_output_bound, _head_output_bound, ("X", "W_V", "W_O")),
    E("invariants.prototype_lipschitz", iprune.prototype_lipschitz, _lipschitz, ("P",), ("T_P",)),
    E("invariants.task_loss_change_bound", iprune.task_loss_change_bound, _task_change, ("dY", "P", "W_c"), ("T_P",)),
)

# ==================================================================================================
# Corruptions
# ==================================================================================================


def _set_one(value: np.ndarray, fill: float) -> np.ndarray:
    out = value.astype(np.float64, copy=True)
    if out.size:
        out.flat[0] = fill
    return out


def _matrix(value: np.ndarray) -> object:
    if value.ndim > 2:
        return value.view(np.ma.MaskedArray)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # np.matrix's own "not recommended"
        return np.asmatrix(value)


ARRAY_CORRUPTIONS: dict[str, Callable[[np.ndarray, float], object]] = {
    "none": lambda v, _: v,
    "int64": lambda v, _: v.astype(np.int64) if v.dtype.kind == "f" else v.astype(np.float64),
    "bool": lambda v, _: v.astype(bool),
    "complex": lambda v, _: v.astype(np.complex128),
    "object": lambda v, _: v.astype(object),
    "float32": lambda v, _: v.astype(np.float32),
    "matrix": lambda v, _: _matrix(v),
    "masked": lambda v, _: np.ma.masked_array(v, mask=np.zeros(v.shape, dtype=bool)),
    "list": lambda v, _: v.tolist(),
    "nan": lambda v, _: _set_one(v, math.nan),
    "inf": lambda v, _: _set_one(v, math.inf),
    "-inf": lambda v, _: _set_one(v, -math.inf),
    "huge": lambda v, e: v * 10.0 ** (100.0 + 208.0 * e) if v.dtype.kind == "f" else v * 10**18,
    "tiny": lambda v, e: v * 10.0 ** -(100.0 + 223.0 * e) if v.dtype.kind == "f" else -v,
    "add axis": lambda v, _: v[None],
    "drop axis": lambda v, _: v[0] if v.ndim > 1 else v.reshape(1, -1),
    "transpose": lambda v, _: v.T.copy(),
    "empty": lambda v, _: v[:0],
    "single": lambda v, _: v[:1].copy(),
}
SCALAR_CORRUPTIONS: tuple[object, ...] = (
    0,
    0.0,
    -1.0,
    math.nan,
    math.inf,
    -math.inf,
    5e-320,  # subnormal
    2.3e-308,  # just above the smallest normal
    1e-300,
    1e300,
    1.7e308,
    10**400,
    2.5,
    "1.0",
    True,
    None,
)
WRONG_TYPES: tuple[object, ...] = (None, "x", {"a": 1}, [1.0])

# Exceptions that are never a clear answer: internals of Python, NumPy or torch leaking out.
_BARE: tuple[type[BaseException], ...] = (
    KeyError,
    AttributeError,
    IndexError,
    OverflowError,
    ZeroDivisionError,
    np.linalg.LinAlgError,  # a ValueError subclass: must be caught before ValueError is accepted
)
_CLEAR: tuple[type[BaseException], ...] = (ValueError, TypeError, FloatingPointError)

# ==================================================================================================
# The property
# ==================================================================================================

COUNTS: Counter[str] = Counter()


def _parameters(fn: Callable[..., Any]) -> list[str]:
    target = inspect.unwrap(fn)
    if inspect.isclass(target):
        return [f.name for f in dataclasses.fields(target)]
    return list(inspect.signature(target).parameters)


def _floats(value: object, depth: int = 0) -> Iterator[float]:
    """Every float in a result (arrays, tensors, tuples, mappings, dataclasses), as a flat stream."""
    if depth > 6:
        return
    if isinstance(value, bool | int | str) or value is None:
        return
    if isinstance(value, InvariantResult):
        # docs/tolerances.md: a bound whose error scale overflows is +inf, reported as uncertified (NaN is
        # refused by InvariantResult itself).
        if value.certified:  # an uncertified check (bound +inf) says nothing about its value
            yield value.value
    elif isinstance(value, float):
        yield value
    elif isinstance(value, np.ndarray):
        if value.dtype.kind in "fc":
            yield from (float(x) for x in np.abs(value).ravel()[:4096])
    elif isinstance(value, torch.Tensor):
        if value.dtype.is_floating_point:
            yield from value.detach().abs().ravel()[:4096].tolist()
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _floats(v, depth + 1)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _floats(v, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _floats(getattr(value, f.name), depth + 1)


def _to_tensor(value: object) -> object:
    if type(value) is np.ndarray and value.dtype.kind in "fiub":
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


@dataclass(frozen=True)
class Plan:
    """What to do to one call, as plain data (drawn by hypothesis; the arguments are built in the test,
    because building runs the reference, whose run-time type checks use ``random`` — not allowed inside
    a strategy)."""

    seed: int
    kind: str  # "none", "array", "scalar" or "wrong type"
    pick: int  # which argument (an index into the row's list for that kind)
    how: str  # the array corruption
    e: float  # magnitude parameter in [0, 1] for "huge" / "tiny"
    scalar: object
    wrong: object


@st.composite
def plans(draw: st.DrawFn, entry: EntryPoint) -> Plan:
    kinds = ["none", *(["array"] if entry.arrays else []), *(["scalar"] if entry.scalars else []), "wrong type"]
    return Plan(
        seed=draw(st.integers(0, 2**32 - 1)),
        kind=draw(st.sampled_from(kinds)),
        pick=draw(st.integers(0, 63)),
        how=draw(st.sampled_from(sorted(ARRAY_CORRUPTIONS))),
        e=draw(st.floats(0.0, 1.0)),
        scalar=draw(st.sampled_from(SCALAR_CORRUPTIONS)),
        wrong=draw(st.sampled_from(WRONG_TYPES)),
    )


def apply(entry: EntryPoint, plan: Plan) -> tuple[str, Args]:
    """Valid arguments from the plan's seed, then at most one corruption of one argument."""
    args = entry.build(np.random.default_rng(plan.seed))
    label = "none"
    if plan.kind == "array":
        name = entry.arrays[plan.pick % len(entry.arrays)]
        with np.errstate(all="ignore"):  # a float32 argument scaled by 1e300 is meant to become inf
            args[name] = ARRAY_CORRUPTIONS[plan.how](np.asarray(args[name]), plan.e)
        label = f"{name}: {plan.how}"
    elif plan.kind == "scalar":
        name = entry.scalars[plan.pick % len(entry.scalars)]
        args[name] = plan.scalar
        label = f"{name} = {plan.scalar!r}"
    elif plan.kind == "wrong type":
        name = sorted(args)[plan.pick % len(args)]
        args[name] = plan.wrong
        label = f"{name} = {plan.wrong!r}"
    for name in entry.tensors:
        args[name] = _to_tensor(args[name])
    return label, args


class OutcomeError(AssertionError):
    """The property failed: a bare internal exception, an error naming no argument, or a silent inf/NaN."""


def check_outcome(entry: EntryPoint, label: str, args: Args) -> str:
    """Call ``entry`` and check the property; return ``"error"`` or ``"result"``, or raise :class:`OutcomeError`.

    Any exception outside ``_BARE`` and ``_CLEAR`` (a ``RuntimeWarning`` turned error, a ``RuntimeError``)
    propagates and fails the test as it is."""
    names = _parameters(entry.fn)
    try:
        result = entry.fn(**args)
    except _BARE as exc:
        raise OutcomeError(f"{entry.name} [{label}]: bare {type(exc).__name__} from inside: {exc}") from exc
    except _CLEAR as exc:
        message = str(exc)
        named = [n for n in names if re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message)]
        if not named:
            raise OutcomeError(
                f"{entry.name} [{label}]: {type(exc).__name__} names none of {names}: {message}"
            ) from exc
        return "error"
    bad = [x for x in _floats(result) if not math.isfinite(x)]
    if bad and not (entry.inf_ok and not any(math.isnan(x) for x in bad)):
        raise OutcomeError(f"{entry.name} [{label}]: returned {len(bad)} non-finite values (silently)")
    return "result"


@given(data=st.data())
def _fuzz(entry: EntryPoint, data: st.DataObject) -> None:
    label, args = apply(entry, data.draw(plans(entry), label="plan"))
    COUNTS[entry.name] += 1
    check_outcome(entry, label, args)


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=[e.name for e in ENTRY_POINTS])
def test_hostile_input_gives_a_clear_error_or_a_finite_result(entry: EntryPoint) -> None:
    """The property on one entry point; and at least one example reached it (a plan that is always
    refused before the call would test nothing). Counted per test, so it holds in any test worker."""
    before = COUNTS[entry.name]
    _fuzz(entry)
    assert COUNTS[entry.name] > before, f"{entry.name}: no example reached the entry point"


@pytest.fixture(scope="module", autouse=True)
def _fuzz_counts() -> Iterator[None]:
    """After the module: the examples run per entry point in this process, written as JSON to
    ``$DDCL_FUZZ_COUNTS_OUT`` when set (one file per test worker: ``.gw0``, ``.gw1``, … appended)."""
    yield
    out = os.environ.get("DDCL_FUZZ_COUNTS_OUT")
    if not out or not COUNTS:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    path = f"{out}.{worker}" if worker else out
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(dict(sorted(COUNTS.items())), fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _planted_nan(Y: np.ndarray) -> np.ndarray:
    return np.full_like(Y, np.nan)


def _planted_inf(Y: np.ndarray) -> float:
    return math.inf


def _planted_key_error(Y: np.ndarray) -> float:
    return float({}["Y"])


def _planted_linalg(Y: np.ndarray) -> float:
    raise np.linalg.LinAlgError("Y: Eigenvalues did not converge")  # names Y, but from inside LAPACK


def _planted_unnamed(Y: np.ndarray) -> float:
    raise ValueError("something is wrong")  # names no argument


def _planted_named(Y: np.ndarray) -> float:
    raise ValueError("Y: must be positive")


@pytest.mark.parametrize(
    ("fn", "inf_ok", "verdict"),
    [
        (_planted_nan, "", "fails"),
        (_planted_inf, "", "fails"),
        (_planted_nan, "documented inf", "fails"),  # a documented inf never excuses a NaN
        (_planted_inf, "documented inf", "result"),
        (_planted_key_error, "", "fails"),
        (_planted_linalg, "", "fails"),  # LinAlgError is a ValueError, but a bare one from inside
        (_planted_unnamed, "", "fails"),
        (_planted_named, "", "error"),
    ],
)
def test_the_property_fires_on_planted_violations(fn: Callable[..., Any], inf_ok: str, verdict: str) -> None:
    """The fuzz's property itself: a silent NaN/inf, a bare internal exception and an error that names no
    argument are each caught; a named error and a documented inf are accepted."""
    entry = EntryPoint("planted", fn, lambda rng: {"Y": np.ones((2, 2))}, ("Y",), inf_ok=inf_ok)
    args = entry.build(np.random.default_rng(0))
    if verdict == "fails":
        with pytest.raises(OutcomeError):
            check_outcome(entry, "planted", args)
    else:
        assert check_outcome(entry, "planted", args) == verdict


# ==================================================================================================
# Older public functions: one row per class of bad argument that used to end in a bare exception
# (AttributeError, IndexError, ZeroDivisionError, OverflowError, MemoryError, an unnamed ValueError
# from NumPy or scikit-learn), a silent result, or an error naming no argument
# ==================================================================================================

_RNG = np.random.default_rng(5)
_A4 = _sym(_RNG, 4)
_W4 = _RNG.standard_normal(4)
_TINY4 = _W4 * 1e-170  # ‖w‖² underflows to 0 in float64: MCA-EXIN's η/‖w‖² divided by zero
_HUGE4 = _W4 * 1e170  # ‖w‖² overflows
_BW = _backward_case(np.random.default_rng(6))
_BW_PARAMS, _BW_CACHE, _BW_DH = _BW
_BW_Y = _BW_CACHE.tokens()
_SPEC = {
    "cfg": rmodel.LayerConfig(d_in=2, d=3, d_k=2, d_v=2, seq_len=2, K_max=3, n_classes=2, T_P=1.0, lambda_q=0.5),
    "seed": 0,
    "head_ops": (),
    "removed_prototypes": (),
    "log_temperatures": (0.0,),
    "batch": 1,
}


def _oja(n: int = 3) -> rtrk.TrackerResult:
    return rtrk.oja_track(_A4, _W4, rtrk.certified_step(_A4), n)


def _spec(**change: object) -> object:
    return smodel.ModelSpec(**{**_SPEC, **change})  # type: ignore[arg-type]


def _draw(strategy: object) -> object:
    """Build and draw one example (a strategy may validate lazily, at the draw)."""
    from hypothesis import find

    assert isinstance(strategy, st.SearchStrategy)
    return find(strategy, lambda _: True)


# (id, the call, the exception class, a regex the message must start with: the argument's name)
OLDER_AREAS: list[tuple[str, Callable[[], object], type[BaseException], str]] = [
    # reference.incrt.trackers: start vectors whose ‖w‖² is not a normal float64 (was ZeroDivisionError)
    ("mca_exin_track tiny w0", lambda: rtrk.mca_exin_track(_A4, _TINY4, 0.1, 5), ValueError, "w0"),
    ("mca_exin_step tiny w", lambda: rtrk.mca_exin_step(_A4, _TINY4, 0.1), ValueError, "w"),
    ("mca_exin_track huge w0", lambda: rtrk.mca_exin_track(_A4, _HUGE4, 0.1, 5), ValueError, "w0"),
    ("mca_exin_step_limit huge w0", lambda: rtrk.mca_exin_step_limit(_A4, _HUGE4), ValueError, "w0"),
    ("mca_exin_step_limit w0 wrong d", lambda: rtrk.mca_exin_step_limit(_A4, _W4[:3]), ValueError, "w0"),
    ("rayleigh A None", lambda: rtrk.rayleigh(None, _W4), TypeError, "A"),  # type: ignore[arg-type]
    ("rayleigh w list", lambda: rtrk.rayleigh(_A4, _W4.tolist()), TypeError, "w"),  # type: ignore[arg-type]
    ("rayleigh w wrong d", lambda: rtrk.rayleigh(_A4, _W4[:3]), ValueError, "w"),
    ("rayleigh tiny w", lambda: rtrk.rayleigh(_A4, _TINY4), ValueError, "w"),
    ("eigenvector_sin_bound gap None", lambda: rtrk.eigenvector_sin_bound(None, 0.1), TypeError, "gap"),  # type: ignore[arg-type]
    ("eigenvector_sin_bound gap NaN", lambda: rtrk.eigenvector_sin_bound(math.nan, 0.1), ValueError, "gap"),
    ("eigenvector_sin_bound E < 0", lambda: rtrk.eigenvector_sin_bound(1.0, -0.1), ValueError, "E"),
    ("eigenvector_sin_bound E str", lambda: rtrk.eigenvector_sin_bound(1.0, "0.1"), TypeError, "E"),  # type: ignore[arg-type]
    ("tracker_gap result None", lambda: rtrk.tracker_gap(_A4, None), TypeError, "result"),  # type: ignore[arg-type]
    ("tracker_tan_bound result list", lambda: rtrk.tracker_tan_bound(_A4, []), TypeError, "result"),  # type: ignore[arg-type]
    ("tracker_gap result of another d", lambda: rtrk.tracker_gap(_A4[:3, :3], _oja()), ValueError, r"result\.w0"),
    ("contraction_factor which list", lambda: rtrk.contraction_factor(np.ones(2), 0.1, []), TypeError, "which"),  # type: ignore[arg-type]
    (
        "TrackerResult estimate NaN",
        lambda: rtrk.TrackerResult(rtrk.TrackerKind.OJA, _W4, _W4, 0.1, np.full(2, 0.1), math.nan),
        ValueError,
        "estimate",
    ),
    # reference.backward: the helpers' shapes, types and scalars (was IndexError, AttributeError, NumPy's
    # unnamed broadcasting errors, OverflowError, or a silent result)
    (
        "cross_entropy_backward labels list",
        lambda: rback.cross_entropy_backward(_BW_CACHE.log_probs, [0]),
        TypeError,
        "labels",
    ),  # type: ignore[arg-type]
    (
        "cross_entropy_backward label out of range",
        lambda: rback.cross_entropy_backward(_BW_CACHE.log_probs, np.full(_BW_CACHE.labels.shape, 7)),
        ValueError,
        "labels",
    ),
    (
        "cross_entropy_backward labels short",
        lambda: rback.cross_entropy_backward(_BW_CACHE.log_probs, _BW_CACHE.labels[:0]),
        ValueError,
        "labels",
    ),
    (
        "cross_entropy_backward log_probs NaN",
        lambda: rback.cross_entropy_backward(_BW_CACHE.log_probs * math.nan, _BW_CACHE.labels),
        ValueError,
        "log_probs",
    ),
    (
        "readout_backward T 0",
        lambda: rback.readout_backward(_BW_CACHE.z_bar, _BW_PARAMS.W_c, _BW_CACHE.logits, 0),
        ValueError,
        "T",
    ),
    (
        "readout_backward T huge",
        lambda: rback.readout_backward(_BW_CACHE.z_bar, _BW_PARAMS.W_c, _BW_CACHE.logits, 10**30),
        ValueError,
        "T",
    ),
    (
        "readout_backward W_c wrong d",
        lambda: rback.readout_backward(_BW_CACHE.z_bar, _BW_PARAMS.W_c[:1], _BW_CACHE.logits, 2),
        ValueError,
        "W_c",
    ),
    (
        "readout_backward z_bar None",
        lambda: rback.readout_backward(None, _BW_PARAMS.W_c, _BW_CACHE.logits, 2),
        TypeError,
        "z_bar",
    ),  # type: ignore[arg-type]
    (
        "ddcl_block_backward Q wrong K",
        lambda: rback.ddcl_block_backward(_BW_Y, _BW_PARAMS.P, _BW_CACHE.Q[:, :1], 1.0, _BW_Y),
        ValueError,
        "Q",
    ),
    (
        "ddcl_block_backward T_P 0",
        lambda: rback.ddcl_block_backward(_BW_Y, _BW_PARAMS.P, _BW_CACHE.Q, 0.0, _BW_Y),
        ValueError,
        "T_P",
    ),
    (
        "ddcl_block_backward dZ NaN",
        lambda: rback.ddcl_block_backward(_BW_Y, _BW_PARAMS.P, _BW_CACHE.Q, 1.0, _BW_Y * math.nan),
        ValueError,
        "dZ",
    ),
    (
        "ddcl_block_backward overflow",
        lambda: rback.ddcl_block_backward(_BW_Y, _BW_PARAMS.P, _BW_CACHE.Q * 1e300, 1e-300, _BW_Y),
        FloatingPointError,
        r"ddcl_block_backward: .*Y, P, Q, T_P, dZ",
    ),
    (
        "head_backward head None",
        lambda: rback.head_backward(None, _BW_CACHE.X, _BW_CACHE.heads[0], _BW_DH),
        TypeError,
        "head",
    ),  # type: ignore[arg-type]
    (
        "head_backward cache None",
        lambda: rback.head_backward(_BW_PARAMS.heads[0], _BW_CACHE.X, None, _BW_DH),
        TypeError,
        "cache",
    ),  # type: ignore[arg-type]
    (
        "head_backward dH wrong T",
        lambda: rback.head_backward(_BW_PARAMS.heads[0], _BW_CACHE.X, _BW_CACHE.heads[0], _BW_DH[:, :1]),
        ValueError,
        "dH",
    ),
    (
        "softmax_rows_backward dA wrong shape",
        lambda: rback.softmax_rows_backward(_BW_CACHE.heads[0].A, _BW_DH),
        ValueError,
        "dA",
    ),
    (
        "attention_scores_backward M wrong d",
        lambda: rback.attention_scores_backward(_BW_CACHE.X, np.eye(2), _BW_CACHE.heads[0].A),
        ValueError,
        "M",
    ),
    ("score_operator_backward head list", lambda: rback.score_operator_backward([], np.eye(3)), TypeError, "head"),  # type: ignore[arg-type]
    (
        "score_operator_backward dM wrong d",
        lambda: rback.score_operator_backward(_BW_PARAMS.heads[0], np.eye(2)),
        ValueError,
        "dM",
    ),
    ("layer_input_backward dX wrong B", lambda: rback.layer_input_backward(_BW_CACHE.x, _BW_DH[:0]), ValueError, "dX"),
    # training.data: seeds handed to NumPy and scikit-learn (was their unnamed errors), and types
    ("digits_sequences seed -1", lambda: rdata.digits_sequences(seed=-1), ValueError, "seed"),
    ("digits_sequences seed 2**32", lambda: rdata.digits_sequences(seed=2**32), ValueError, "seed"),
    ("digits_sequences seed float", lambda: rdata.digits_sequences(seed=1.5), TypeError, "seed"),  # type: ignore[arg-type]
    ("digits_sequences seed bool", lambda: rdata.digits_sequences(seed=True), TypeError, "seed"),
    (
        "digits_sequences test_fraction str",
        lambda: rdata.digits_sequences(test_fraction="0.2"),
        TypeError,
        "test_fraction",
    ),  # type: ignore[arg-type]
    ("named_dataset seed -1", lambda: rdata.named_dataset("planted", -1), ValueError, "seed"),
    ("named_dataset seed None", lambda: rdata.named_dataset("planted", None), TypeError, "seed"),  # type: ignore[arg-type]
    ("named_dataset name", lambda: rdata.named_dataset("mnist", 0), ValueError, "name"),
    (
        "planted_offsets offsets int",
        lambda: rdata.planted_offsets(offsets=3, rng=np.random.default_rng(0)),
        TypeError,
        "offsets",
    ),  # type: ignore[arg-type]
    (
        "planted_operator eigenvalues float",
        lambda: rops.planted_operator(1.0, rng=np.random.default_rng(0)),
        TypeError,
        "eigenvalues",
    ),  # type: ignore[arg-type]
    (
        "SequenceDataset name None",
        lambda: rdata.SequenceDataset(None, _BW_CACHE.x, _BW_CACHE.labels, _BW_CACHE.x, _BW_CACHE.labels, 2),  # type: ignore[arg-type]
        TypeError,
        "name",
    ),
    # ddcl_incrt.strategies: sizes beyond what an example can hold (was MemoryError, NumPy's "maximum
    # allowed dimension exceeded", or an error naming the other bound), and specs that cannot be built
    ("ddcl_problems max_K huge", lambda: _draw(sddcl.ddcl_problems(max_K=10**30)), ValueError, "max_K"),
    ("ddcl_problems min_K huge", lambda: _draw(sddcl.ddcl_problems(min_K=10**30)), ValueError, "min_K"),
    ("row_stochastic K huge", lambda: _draw(sddcl.row_stochastic(2, 10**9)), ValueError, "K"),
    ("planted_operators max_d huge", lambda: _draw(sincrt.planted_operators(max_d=10**6)), ValueError, "max_d"),
    ("orthonormal_sets d < 0", lambda: _draw(sincrt.orthonormal_sets(-1, 0)), ValueError, "d"),
    (
        "antisymmetric_matrices scale NaN",
        lambda: _draw(sincrt.antisymmetric_matrices(2, math.nan)),
        ValueError,
        "scale",
    ),
    ("DDCLProblem T_P 0", lambda: sddcl.DDCLProblem(Y=_BW_Y, P=_BW_PARAMS.P, T_P=0.0), ValueError, "T_P"),
    ("DDCLProblem P wrong d", lambda: sddcl.DDCLProblem(Y=_BW_Y, P=_BW_PARAMS.P[:1], T_P=1.0), ValueError, "P"),
    (
        "PlantedOperator theta NaN",
        lambda: sincrt.PlantedOperator(A=_A4, eigenvalues=np.ones(4), V=np.eye(4), theta=math.nan, scale=1.0),
        ValueError,
        "theta",
    ),
    ("ModelSpec cfg None", lambda: _spec(cfg=None), TypeError, "cfg"),
    ("ModelSpec seed -1", lambda: _spec(seed=-1), ValueError, "seed"),
    ("ModelSpec batch 0", lambda: _spec(batch=0), ValueError, "batch"),
    ("ModelSpec head_ops list", lambda: _spec(head_ops=[]), TypeError, "head_ops"),
    ("ModelSpec remove the only head", lambda: _spec(head_ops=(("remove", 0),)), ValueError, r"head_ops\[0\]"),
    (
        "ModelSpec remove beyond the heads",
        lambda: _spec(head_ops=(("add", 0), ("remove", 2)), log_temperatures=(0.0,)),
        ValueError,
        r"head_ops\[1\]",
    ),
    ("ModelSpec unknown prototype", lambda: _spec(removed_prototypes=(3,)), ValueError, r"removed_prototypes\[0\]"),
    ("ModelSpec every prototype", lambda: _spec(removed_prototypes=(0, 1, 2)), ValueError, "removed_prototypes"),
    ("ModelSpec log-temperature 1e3", lambda: _spec(log_temperatures=(1e3,)), ValueError, r"log_temperatures\[0\]"),
    ("ModelSpec log-temperatures count", lambda: _spec(log_temperatures=(0.0, 0.0)), ValueError, "log_temperatures"),
]


@pytest.mark.parametrize(("call", "error", "name"), [r[1:] for r in OLDER_AREAS], ids=[r[0] for r in OLDER_AREAS])
def test_older_public_functions_name_the_bad_argument(
    call: Callable[[], object], error: type[BaseException], name: str
) -> None:
    """With jaxtyping's run-time checks (pytest's ``--jaxtyping-packages``) off, as a user runs the code:
    the error is the function's own, not the test harness's type checker's."""
    previous = jaxtyping.config.jaxtyping_disable
    jaxtyping.config.update("jaxtyping_disable", True)
    try:
        with pytest.raises(error, match=rf"^{name}(?![A-Za-z0-9_])") as exc:
            call()
    finally:
        jaxtyping.config.update("jaxtyping_disable", previous)
    assert type(exc.value) not in _BARE


def test_strategy_range_errors_are_value_errors_hypothesis_recognises() -> None:
    """A size out of range is both hypothesis's ``InvalidArgument`` (what a suite built on hypothesis
    expects) and a ``ValueError``; a wrong type stays a ``TypeError``."""
    from hypothesis.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as out_of_range:
        sddcl.row_stochastic(2, 0)
    assert isinstance(out_of_range.value, ValueError)
    with pytest.raises(InvalidArgument) as wrong_type:
        sddcl.row_stochastic(2, 1.5)  # type: ignore[arg-type]
    assert isinstance(wrong_type.value, TypeError)
    assert not isinstance(wrong_type.value, ValueError)


def test_valid_calls_at_the_new_limits_still_work() -> None:
    """The checks refuse only what cannot be computed: the largest scikit-learn seed, an Oja start as tiny
    as the MCA-EXIN one that is refused (Oja normalises it exactly), and a non-symmetric ``A`` in the
    Rayleigh quotient (the falsifiers use one)."""
    assert rdata.named_dataset("planted", 2**32 - 1).n_classes == 2
    tiny = rtrk.oja_track(_A4, _TINY4, rtrk.certified_step(_A4), 5)
    ref = rtrk.oja_track(_A4, _W4, rtrk.certified_step(_A4), 5)
    assert rtrk.angle(tiny.w, ref.w) < 1e-12
    assert rtrk.rayleigh(np.array([[1.0, 5.0], [0.0, 0.0]]), np.array([1.0, 0.0])) == 1.0
    spec = _spec(head_ops=(("add", 0), ("remove", 1)), removed_prototypes=(2,), log_temperatures=(0.5,))
    assert sorted(spec.build().params.heads) == [0]  # type: ignore[attr-defined]
