"""The accelerated optimisers against the reference's, through births, prunes and a prototype prune.

Same per-group rates, same formulas, state keyed by the same flat names; float64 agrees within the
VALUE row, and a birth leaves every existing parameter's moments bit-identical to a run without it.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from accelerated import optim as acc_optim  # noqa: E402
from reference import optim as ref_optim  # noqa: E402
from reference.tolerances import CheckKind, tolerance  # noqa: E402

LR = ref_optim.LearningRates(rest=3e-3, prototypes=1e-2, temperatures=5e-3)
SHAPES = {"W_in": (3, 4), "heads.0.W_Q": (4, 2), "heads.0.s": (), "P": (4, 3), "b_c": (2,)}


def _grads(rng: np.random.Generator, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    return {name: np.asarray(rng.standard_normal(shape)) for name, shape in shapes.items()}


def _t(d: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()}


def _max_rel(a: torch.Tensor, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.numpy() - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1.0))


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_optimiser_trajectory_with_a_birth_and_prunes_agrees_with_the_reference(kind: str) -> None:
    rng = np.random.default_rng(0)
    ref = ref_optim.Adam(lr=LR) if kind == "adam" else ref_optim.SGD(lr=LR)
    acc = acc_optim.Adam(lr=LR) if kind == "adam" else acc_optim.SGD(lr=LR)
    shapes = dict(SHAPES)
    p_ref = {k: np.asarray(v) for k, v in _grads(rng, shapes).items()}
    p_acc = _t(p_ref)
    s_ref, s_acc = ref.init_state(), acc.init_state()
    tol = tolerance("float64", CheckKind.VALUE).rtol
    for step in range(8):
        if step == 3:  # birth: head 1 joins with fresh state
            shapes.update({"heads.1.W_Q": (4, 2), "heads.1.s": ()})
            new = _grads(rng, {"heads.1.W_Q": (4, 2), "heads.1.s": ()})
            p_ref.update(new)
            p_acc.update(_t(new))
        if step == 5:  # head 0 pruned; prototype column 1 pruned
            for name in ("heads.0.W_Q", "heads.0.s"):
                shapes.pop(name)
                p_ref.pop(name)
                p_acc.pop(name)
            p_ref["P"] = np.delete(p_ref["P"], 1, axis=1)
            p_acc["P"] = p_acc["P"][:, [0, 2]]
            shapes["P"] = (4, 2)
            s_ref = s_ref.without_column("P", 1)
            s_acc = s_acc.without_column("P", 1)
        g = _grads(rng, shapes)
        p_ref, s_ref = ref.step(s_ref, p_ref, g)
        p_acc, s_acc = acc.step(s_acc, p_acc, _t(g))
        assert list(p_acc) == list(p_ref)
        for name in p_ref:
            assert _max_rel(p_acc[name], p_ref[name]) <= tol, (step, name)
    if kind == "adam":
        assert isinstance(s_acc, acc_optim.AdamState)
        assert isinstance(s_ref, ref_optim.AdamState)
        assert {k: m.t for k, m in s_acc.moments.items()} == {k: m.t for k, m in s_ref.moments.items()}


def test_a_birth_leaves_existing_moments_bit_identical() -> None:
    """One step, then the same second step with and without a newborn head: every existing parameter
    and its moments are bit-identical across the two, and the newborn starts its own count at 1."""
    rng = np.random.default_rng(1)
    adam = acc_optim.Adam(lr=LR)
    params = _t({k: np.asarray(v) for k, v in _grads(rng, SHAPES).items()})
    p1, s1 = adam.step(adam.init_state(), params, _t(_grads(rng, SHAPES)))
    g2 = _t(_grads(rng, SHAPES))
    born = {"heads.1.W_Q": torch.tensor(rng.standard_normal((4, 2)))}
    p_with, s_with = adam.step(s1, {**p1, **born}, {**g2, "heads.1.W_Q": torch.ones(4, 2, dtype=torch.float64)})
    p_without, s_without = adam.step(s1, p1, g2)
    for name in SHAPES:
        assert torch.equal(p_with[name], p_without[name]), name
        assert torch.equal(s_with.moments[name].m, s_without.moments[name].m), name
        assert torch.equal(s_with.moments[name].v, s_without.moments[name].v), name
        assert s_with.moments[name].t == s_without.moments[name].t == 2
    assert s_with.moments["heads.1.W_Q"].t == 1
