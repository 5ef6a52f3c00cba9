"""Data the project ships or generates (SPEC §5): nothing is downloaded at run time.

* :func:`digits_sequences` — scikit-learn's bundled ``load_digits`` (1,797 8×8 images, 10 classes),
  each image a sequence of ``T = 8`` row-tokens with ``d_in = 8`` features (pixel values / 16), split
  stratified and seeded into train and test.
* :func:`planted_offsets` — a sequence task with a planted number of needed attention heads.
* :func:`planted_pairs` — ``m`` token-pair relations, each routed by one head; the layer with ``m`` heads
  fits it exactly (:mod:`reference.planted_solution`).
(The static operator with a planted spectrum, for claims G1–G6, is maths, not data:
:func:`reference.incrt.operators.planted_operator`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from jaxtyping import Float64, Int64

from reference._arrays import check_array, check_count, check_real, check_rng

# scikit-learn seeds a legacy RandomState, whose seeds are the integers in [0, 2**32 − 1]
SKLEARN_SEED_MAX = 2**32 - 1


def check_seed(name: str, value: object, maximum: int | None = None) -> int:
    """A seed: an int (not a bool, not a float) ``>= 0`` and at most ``maximum`` when given (NumPy's
    ``default_rng`` takes any such int; scikit-learn's ``random_state`` at most ``2**32 − 1``)."""
    out = check_count(name, value, 0)
    if maximum is not None and out > maximum:
        raise ValueError(f"{name}: must be <= {maximum}, got {out}")
    return out


@dataclass(frozen=True)
class SequenceDataset:
    """A classification task on sequences: ``x`` is ``B×T×d_in`` float64, ``labels`` int64 in [0, C)."""

    name: str
    x_train: Float64[np.ndarray, "B T d_in"]
    labels_train: Int64[np.ndarray, " B"]
    x_test: Float64[np.ndarray, "B2 T d_in"]
    labels_test: Int64[np.ndarray, " B2"]
    n_classes: int
    meta: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"name: expected a str, got {type(self.name).__name__}")
        check_count("n_classes", self.n_classes, 2)  # a classification task needs two classes at least
        for name in ("x_train", "x_test"):
            check_array(name, getattr(self, name), 3)
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(f"x_test: shape {self.x_test.shape} does not match x_train {self.x_train.shape}")
        for name, x in (("labels_train", self.x_train), ("labels_test", self.x_test)):
            lab = getattr(self, name)
            if not isinstance(lab, np.ndarray) or lab.dtype != np.int64 or lab.shape != (x.shape[0],):
                raise TypeError(f"{name}: expected int64 array of shape ({x.shape[0]},)")
            if lab.size and (lab.min() < 0 or lab.max() >= self.n_classes):
                raise ValueError(f"{name}: labels must lie in [0, {self.n_classes})")

    @property
    def seq_len(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def d_in(self) -> int:
        return int(self.x_train.shape[2])


def digits_sequences(*, test_fraction: float = 0.25, seed: int = 0) -> SequenceDataset:
    """Digits as 8-token sequences (row ``r`` of the image is token ``r``), stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < check_real("test_fraction", test_fraction) < 1.0:
        raise ValueError(f"test_fraction: must lie in (0, 1), got {test_fraction}")
    check_seed("seed", seed, SKLEARN_SEED_MAX)
    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float64) / 16.0  # 1797×8×8, values in [0, 1]
    labels = np.asarray(bunch.target, dtype=np.int64)
    idx_train, idx_test = train_test_split(
        np.arange(labels.size), test_size=test_fraction, stratify=labels, random_state=seed
    )
    return SequenceDataset(
        name="digits",
        x_train=x[idx_train],
        labels_train=labels[idx_train],
        x_test=x[idx_test],
        labels_test=labels[idx_test],
        n_classes=10,
        meta={"source": "sklearn.datasets.load_digits", "seed": seed, "test_fraction": test_fraction},
    )


def planted_offsets(
    *,
    n_train: int = 512,
    n_test: int = 256,
    seq_len: int = 8,
    d_in: int = 6,
    offsets: tuple[int, ...] = (1, 3),
    rng: np.random.Generator,
) -> SequenceDataset:
    """A task whose label needs ``m = len(offsets)`` distinct attention patterns.

    Tokens ``x_t ~ N(0, I)``. For each planted offset ``o_k`` there is a pair of unit directions
    ``(a_k, b_k)`` (all ``a``'s and ``b``'s mutually orthogonal, so ``d_in ≥ 2m``), and the score
    ``s = Σ_k Σ_t ⟨a_k, x_t⟩ ⟨b_k, x_{t−o_k}⟩`` (indices cyclic). The label is ``1[s > 0]``.

    Why ``m`` heads are needed (an informal argument about the task, not a theorem about this layer;
    label: *measured*, the runs in docs/runs.md test it): computing term ``k`` requires every position
    ``t`` to read the token at ``t − o_k``. One softmax head gives each query one attention distribution
    over positions, so within one head a query cannot read two relative positions separately: it reads
    their mixture, and the product structure ``⟨a_k, x_t⟩⟨b_k, x_{t−o_k}⟩`` for different ``k`` cannot
    be separated from the mixture (the ``b_k`` components of different offsets are independent
    Gaussians). ``m`` heads, one per offset, suffice *for the routing*: head ``k`` attends from ``t`` to
    ``t − o_k`` and writes ``⟨b_k, ·⟩``; the product with ``⟨a_k, x_t⟩`` must then come from the only
    nonlinearity after attention, the DDCL block's soft assignment (whether the layer learns it is
    measured, not assumed). INCRT starts from one head, so the planted final head count is ``m``
    (``m − 1`` births). Whether INCRT's growth statistic finds it is what the experiment measures.
    """
    gen = check_rng(rng)
    seq_len = check_count("seq_len", seq_len, 2)
    d_in = check_count("d_in", d_in, 1)
    n_train, n_test = check_count("n_train", n_train, 1), check_count("n_test", n_test, 1)
    if not isinstance(offsets, tuple | list):
        raise TypeError(f"offsets: expected a tuple of distinct integers in [1, seq_len), got {type(offsets).__name__}")
    m = len(offsets)
    if (
        m < 1
        or any(isinstance(o, bool) or not isinstance(o, int | np.integer) for o in offsets)
        or len(set(offsets)) != m
        or any(not 0 < o < seq_len for o in offsets)
    ):
        raise ValueError(f"offsets: need distinct integers in [1, seq_len), got {offsets}")
    if d_in < 2 * m:
        raise ValueError(f"d_in: need d_in >= 2·len(offsets) = {2 * m} for orthogonal directions, got {d_in}")
    basis, _ = np.linalg.qr(gen.standard_normal((d_in, d_in)))
    a, b = basis[:, :m], basis[:, m : 2 * m]

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        x = gen.standard_normal((count, seq_len, d_in))
        s = np.zeros(count)
        for k, o in enumerate(offsets):
            s += np.einsum("bt,bt->b", x @ a[:, k], np.roll(x, o, axis=1) @ b[:, k])
        return x, (s > 0.0).astype(np.int64)

    x_train, l_train = draw(n_train)
    x_test, l_test = draw(n_test)
    return SequenceDataset(
        name="planted-offsets",
        x_train=x_train,
        labels_train=l_train,
        x_test=x_test,
        labels_test=l_test,
        n_classes=2,
        meta={"offsets": offsets, "planted_heads": m},
    )


def planted_pairs(
    *,
    n_relations: int,
    n_train: int = 512,
    n_test: int = 512,
    seq_len: int = 8,
    d_in: int | None = None,
    rng: np.random.Generator,
) -> SequenceDataset:
    """A task with ``m = n_relations`` planted token-pair relations, each read by one attention head.

    Each sequence has ``T = seq_len`` tokens. For every relation ``k < m`` one token is of type ``A_k``
    and one of type ``B_k``, at ``2m`` distinct positions drawn uniformly per sequence; the other
    ``T − 2m`` tokens are blank (all-zero features). Every typed token carries a sign ``s ∈ {−1, +1}``,
    drawn uniformly and independently. Token features (``d_in ≥ 4m``; coordinates beyond ``4m`` stay 0):

        x_t[type(t)] = 1               unsigned type one-hot   (coordinates 0 .. 2m−1)
        x_t[2m + type(t)] = s_t        signed type one-hot     (coordinates 2m .. 4m−1)

    with ``type(A_k) = k``, ``type(B_k) = m + k``. Relation ``k``'s bit is ``b_k = 1[s_{A_k} = s_{B_k}]``
    and the label is ``Σ_k 2^k b_k`` (``2^m`` classes, balanced in expectation).

    Each bit is an XOR of two signs on two different tokens: no sum over tokens of per-token features
    can threshold it (the argument: docs/studies/planted-heads.md), so it has to be routed between
    tokens; :func:`reference.planted_solution.constructed_params` routes it with one head per relation
    and fits every label exactly.
    """
    gen = check_rng(rng)
    m = check_count("n_relations", n_relations, 1)
    seq_len = check_count("seq_len", seq_len, 2)
    if seq_len < 2 * m:
        raise ValueError(
            f"seq_len: need seq_len >= 2·n_relations = {2 * m} (two typed tokens per relation), got {seq_len}"
        )
    width = 4 * m if d_in is None else check_count("d_in", d_in, 1)
    if width < 4 * m:
        raise ValueError(f"d_in: need d_in >= 4·n_relations = {4 * m} (unsigned and signed type one-hots), got {width}")
    n_train, n_test = check_count("n_train", n_train, 1), check_count("n_test", n_test, 1)

    def draw(count: int) -> tuple[np.ndarray, np.ndarray]:
        # positions[:, j] is where the token of type j (A_0..A_{m−1}, B_0..B_{m−1}) sits
        positions = np.argsort(gen.random((count, seq_len)), axis=1)[:, : 2 * m]
        signs = gen.choice(np.array([-1.0, 1.0]), size=(count, 2 * m))
        x = np.zeros((count, seq_len, width))
        rows = np.arange(count)[:, None]
        types = np.arange(2 * m)[None, :]
        x[rows, positions, types] = 1.0
        x[rows, positions, 2 * m + types] = signs
        bits = (signs[:, :m] == signs[:, m:]).astype(np.int64)
        return x, bits @ (2 ** np.arange(m, dtype=np.int64))

    x_train, l_train = draw(n_train)
    x_test, l_test = draw(n_test)
    return SequenceDataset(
        name=f"planted-pairs-m{m}",
        x_train=x_train,
        labels_train=l_train,
        x_test=x_test,
        labels_test=l_test,
        n_classes=2**m,
        meta={"n_relations": m, "planted_heads": m, "seq_len": seq_len, "d_in": width},
    )


def named_dataset(name: str, seed: int) -> SequenceDataset:
    """The audit's data sets by name: ``"digits"`` (the digits sequences, a quarter held out, split by
    ``seed``) or ``"planted"`` (planted offsets with their defaults, drawn by ``default_rng([seed, 0])``).
    One definition for the audit, the studies and the distributed launcher. ``seed`` is an int in
    ``[0, 2**32 − 1]`` for both (the digits split's limit, so one seed means the same for either)."""
    check_seed("seed", seed, SKLEARN_SEED_MAX)
    if name == "digits":
        return digits_sequences(test_fraction=0.25, seed=seed)
    if name == "planted":
        return planted_offsets(rng=np.random.default_rng([seed, 0]))
    raise ValueError(f"name: expected the data set 'digits' or 'planted', got {name!r}")


__all__ = [
    "SKLEARN_SEED_MAX",
    "SequenceDataset",
    "check_seed",
    "digits_sequences",
    "named_dataset",
    "planted_offsets",
    "planted_pairs",
]
