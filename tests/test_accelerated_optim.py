"""The accelerated optimisers against the reference's, through births, prunes and a prototype prune.

Same per-group rates, same formulas, state keyed by the same flat names; float64 agrees within the
VALUE row, and a birth leaves every existing parameter's moments bit-identical to a run without it.
"""

from __future__ import annotations

from typing import Any

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


# --------------------------------------------------------------------------------------------------
# Heads stacked: one tensor per head weight kind, moments stacked alike with a step count per head
# --------------------------------------------------------------------------------------------------

D, D_K, D_V = 4, 2, 3
HEAD_SHAPES = {"W_Q": (D, D_K), "W_K": (D, D_K), "W_V": (D, D_V), "W_O": (D_V, D), "s": ()}


def _head_arrays(rng: np.random.Generator, hid: int) -> dict[str, np.ndarray]:
    return {f"heads.{hid}.{f}": np.asarray(rng.standard_normal(shape)) for f, shape in HEAD_SHAPES.items()}


def _stacked(flat: dict[str, torch.Tensor], ids: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Flat per-head tensors as the stored names of :func:`accelerated.backward.leaves` (rows in id order)."""
    out = {k: v for k, v in flat.items() if not k.startswith("heads.")}
    out.update({f"heads.{f}": torch.stack([flat[f"heads.{h}.{f}"] for h in ids]) for f in HEAD_SHAPES})
    return out


def _heads(stacked: dict[str, torch.Tensor], ids: tuple[int, ...]) -> Any:
    from accelerated.model import HeadStack

    return HeadStack(ids, *(stacked[f"heads.{f}"] for f in HEAD_SHAPES))


def test_stacked_adam_equals_the_per_head_adam_bit_for_bit_through_a_birth_and_a_prune() -> None:
    """The engine's Adam on stacked head tensors (a step count per head: a newborn's bias correction is
    its own) against the same Adam on one tensor per head, the naming the reference uses: parameters,
    moments and counts bit-identical at every step, through a birth (step 3) and a prune (step 5)."""
    from accelerated.backward import flat_from_leaves

    rng = np.random.default_rng(2)
    adam = acc_optim.Adam(lr=LR)
    ids: tuple[int, ...] = (0, 1)
    flat = _t({"W_in": rng.standard_normal((3, D)), **_head_arrays(rng, 0), **_head_arrays(rng, 1)})
    stacked = _stacked(flat, ids)
    s_flat, s_stacked = adam.init_state(), adam.init_state(_heads(stacked, ids))
    for step in range(8):
        if step == 3:  # birth of head 2: its rows appended, moments zero with count 0
            born = _t(_head_arrays(rng, 2))
            flat.update(born)
            ids = (*ids, 2)
            stacked = _stacked(flat, ids)
            s_stacked = s_stacked.with_head(2)
        if step == 5:  # prune of head 0
            for f in HEAD_SHAPES:
                flat.pop(f"heads.0.{f}")
            ids = ids[1:]
            stacked = {k: (v[1:] if k.startswith("heads.") else v) for k, v in stacked.items()}
            s_flat = s_flat.without({f"heads.0.{f}" for f in HEAD_SHAPES})
            s_stacked = s_stacked.without({f"heads.0.{f}" for f in HEAD_SHAPES})
        g_flat = _t({k: rng.standard_normal(tuple(v.shape)) for k, v in flat.items()})
        flat, s_flat = acc_optim.Adam(lr=LR).step(s_flat, flat, g_flat)
        stacked, s_stacked = adam.step(s_stacked, stacked, _stacked(g_flat, ids))
        assert isinstance(s_stacked, acc_optim.AdamState)
        assert isinstance(s_flat, acc_optim.AdamState)
        assert s_stacked.heads is not None
        assert s_stacked.heads.ids == ids
        as_flat = flat_from_leaves(ids, stacked)
        assert list(as_flat) == list(flat)
        for name in flat:
            assert torch.equal(as_flat[name], flat[name]), (step, name)
        mine, theirs = s_stacked.flat_moments(), s_flat.moments
        assert list(mine) == list(theirs)
        for name, mom in theirs.items():
            assert torch.equal(mine[name].m, mom.m), (step, name)
            assert torch.equal(mine[name].v, mom.v), (step, name)
            assert mine[name].t == mom.t, (step, name)
    assert s_stacked.heads.t == (8, 5)  # head 1 since the start, head 2 born before step 4


def test_a_birth_and_a_prune_leave_the_surviving_heads_weights_and_moments_bit_identical() -> None:
    """:func:`accelerated.growth_phases.add_head` / ``remove_head`` and the state's ``with_head`` /
    ``without``: rows are appended or deleted; every surviving head's weights and moments (and count)
    are ``torch.equal`` to what they were."""
    from accelerated import backward as acc_backward
    from accelerated import growth_phases as acc_gp
    from accelerated.trainer import with_leaves
    from reference.model import LayerConfig, init_params
    from reference.surgery import add_head as ref_add_head

    cfg = LayerConfig(d_in=3, d=D, d_k=D_K, d_v=D_V, seq_len=4, K_max=3, n_classes=2, T_P=0.7, lambda_q=0.1)
    rng = np.random.default_rng(3)
    ref_params, _ = ref_add_head(init_params(cfg, rng=rng), cfg, rng=rng)
    params = acc_backward.from_reference(ref_params, dtype=torch.float64)
    adam = acc_optim.Adam(lr=LR)
    state = adam.init_state(params.heads)
    for _ in range(2):  # moments that are not zero
        stored = acc_backward.leaves(params)
        new, state = adam.step(state, stored, _t({k: rng.standard_normal(tuple(v.shape)) for k, v in stored.items()}))
        params = with_leaves(params, new)
    assert isinstance(state, acc_optim.AdamState)
    assert state.heads is not None

    def snapshot(p: Any, s: acc_optim.AdamState) -> dict[int, tuple[Any, ...]]:
        assert s.heads is not None
        return {
            h: (
                tuple(getattr(p.heads[h], f).detach().clone() for f in HEAD_SHAPES),
                tuple(s.heads.m[f"heads.{f}"][i].clone() for f in HEAD_SHAPES),
                tuple(s.heads.v[f"heads.{f}"][i].clone() for f in HEAD_SHAPES),
                s.heads.t[i],
            )
            for i, h in enumerate(s.heads.ids)
        }

    def unchanged(before: dict[int, tuple[Any, ...]], after: dict[int, tuple[Any, ...]]) -> bool:
        return all(
            all(torch.equal(a, b) for a, b in zip(x, y, strict=True)) if isinstance(x, tuple) else x == y
            for h in before
            for x, y in zip(before[h], after[h], strict=True)
        )

    before = snapshot(params, state)
    born, hid = acc_gp.add_head(params, cfg, rng=np.random.default_rng(4))
    grown = state.with_head(hid)
    assert born.heads.ids == (0, 1, 2)
    assert grown.heads is not None
    assert grown.heads.ids == (0, 1, 2)
    after = snapshot(born, grown)
    assert unchanged(before, {h: after[h] for h in before})
    assert after[hid][3] == 0
    assert all(float(t.abs().max()) == 0.0 for t in (*after[hid][1], *after[hid][2]))
    assert all(t.is_leaf and t.requires_grad for t in born.heads.tensors())

    pruned = acc_gp.remove_head(born, 1)
    shrunk = grown.without({f"heads.1.{f}" for f in HEAD_SHAPES})
    assert pruned.heads.ids == (0, 2)
    assert shrunk.heads is not None
    assert shrunk.heads.ids == (0, 2)
    kept = snapshot(pruned, shrunk)
    assert unchanged({h: after[h] for h in (0, 2)}, kept)
    assert all(t.is_leaf and t.requires_grad for t in pruned.heads.tensors())


def test_stacked_moments_round_trip_through_the_reference_exactly() -> None:
    """``to_reference`` writes the stacked moments under the flat names (a head that has taken no step has
    none, as in the reference) and ``state_from_reference(…, heads=)`` stacks them back, bit for bit."""
    from accelerated import backward as acc_backward
    from reference.model import LayerConfig, init_params

    cfg = LayerConfig(d_in=3, d=D, d_k=D_K, d_v=D_V, seq_len=4, K_max=3, n_classes=2, T_P=0.7, lambda_q=0.1)
    rng = np.random.default_rng(5)
    params = acc_backward.from_reference(init_params(cfg, rng=rng), dtype=torch.float32)
    adam = acc_optim.Adam(lr=LR)
    state = adam.init_state(params.heads)
    stored = acc_backward.leaves(params)
    grads = {k: torch.tensor(rng.standard_normal(tuple(v.shape)), dtype=torch.float32) for k, v in stored.items()}
    _, state = adam.step(state, stored, grads)
    assert isinstance(state, acc_optim.AdamState)
    state = state.with_head(1)  # a newborn, not yet stepped
    ref = state.to_reference()
    assert "heads.1.W_Q" not in ref.moments
    assert ref.moments["heads.0.W_Q"].t == 1
    heads = _heads(
        {f"heads.{f}": torch.cat([t, t[:1]]) for f, t in zip(HEAD_SHAPES, params.heads.tensors(), strict=True)},
        (0, 1),
    )
    back = adam.state_from_reference(ref, dtype=torch.float32, heads=heads)
    assert back.heads is not None
    assert state.heads is not None
    assert back.heads.ids == state.heads.ids
    assert back.heads.t == state.heads.t == (1, 0)
    for name in state.heads.m:
        assert torch.equal(back.heads.m[name], state.heads.m[name])
        assert torch.equal(back.heads.v[name], state.heads.v[name])
    assert set(back.moments) == set(state.moments) == {"W_in", "E_pos", "P", "W_c", "b_c"}
