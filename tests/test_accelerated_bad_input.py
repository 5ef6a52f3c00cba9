"""The accelerated engine's boundary on bad input: a diverging run refused as the reference refuses it,
devices and dtypes checked before any work, and the public functions' arguments named in every error."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _small_run import LAYER, RUN, TRAIN_SEED, small_data  # noqa: E402

from accelerated import backward as acc_backward  # noqa: E402
from accelerated import ddcl as acc_ddcl  # noqa: E402
from accelerated import distributed as acc_dist  # noqa: E402
from accelerated import growth_statistics as acc_stats  # noqa: E402
from accelerated import model as acc_model  # noqa: E402
from accelerated import optim as acc_optim  # noqa: E402
from accelerated import trackers as acc_trk  # noqa: E402
from accelerated import trainer as acc_trainer  # noqa: E402
from reference import optim as ref_optim  # noqa: E402
from reference.model import init_params  # noqa: E402
from reference.optim import LearningRates  # noqa: E402
from training import trainer as ref_trainer  # noqa: E402

# ==================================================================================================
# A diverging float64 run: both engines refuse it naming the head's log-temperature s
# ==================================================================================================


def _diverging(optimizer: str, temperature_rate: float, check_invariants: bool) -> Any:
    """The small run with the temperatures' learning rate far too large: a head's ``s`` leaves
    ``|s| ≤ 708.4`` within the first checks (sgd 1e3: s → +3341, the attention goes uniform and every
    parameter stays finite; sgd 1e6 and adam 1e3: s → −5859 / −1000, the next step's attention is NaN)."""
    rates = LearningRates(rest=1e-2, prototypes=1e-2, temperatures=temperature_rate)
    return replace(RUN, optimizer=optimizer, lr=rates, check_invariants=check_invariants)


@pytest.mark.parametrize(
    ("optimizer", "temperature_rate", "check_invariants"),
    [
        pytest.param("sgd", 1e3, True, id="sgd-s-positive"),
        pytest.param("sgd", 1e3, False, id="sgd-s-positive-no-invariants"),
        pytest.param("sgd", 1e6, True, id="sgd-s-negative"),
        pytest.param("adam", 1e3, True, id="adam-s-negative"),
    ],
)
def test_a_diverging_float64_run_is_refused_naming_s_on_both_engines(
    optimizer: str, temperature_rate: float, check_invariants: bool
) -> None:
    """The reference refuses the step that takes ``|s|`` past 708.4 (``HeadParams``); the accelerated
    engine, which synchronises only at checks (and at D1 when invariants are on), refuses the same run
    with the same exception class naming the same field, never with ``OverflowError: math range error``
    (the ``τ = exp(s)`` of the check's record) or the NaN tokens that follow."""
    cfg = _diverging(optimizer, temperature_rate, check_invariants)
    with pytest.raises(ValueError, match=r"^s: a log-temperature must satisfy \|s\| <= 708\.3964") as ref:
        ref_trainer.train(small_data(), LAYER, cfg, rng=np.random.default_rng(TRAIN_SEED))
    with pytest.raises(ValueError, match=r"^params\.heads\[\d+\]\.s: a log-temperature must satisfy") as acc:
        acc_trainer.train(small_data(), LAYER, cfg, rng=np.random.default_rng(TRAIN_SEED))
    assert type(acc.value) is type(ref.value)
    assert "training diverged" in str(acc.value)


def test_a_run_whose_layer_overflows_from_finite_parameters_is_refused_as_diverged_on_both_engines() -> None:
    """Every rate far too large (sgd, 1e3): within a few steps the weights reach ~1e177 — finite, with
    ``|s|`` in range — and the layer overflows float64. The reference's forward refuses that step as a
    diverged run; the accelerated engine's D1 host copy sees the same non-finite values and says the
    same, naming the step and the first non-finite of ``Y``, ``Q`` (D1 refused them as a NaN argument,
    as if they were a bad input)."""
    cfg = replace(RUN, optimizer="sgd", lr=LearningRates(rest=1e3, prototypes=1e3, temperatures=1e3))
    with pytest.raises(FloatingPointError, match=r"overflowed inside the layer.*diverged") as ref:
        ref_trainer.train(small_data(), LAYER, cfg, rng=np.random.default_rng(TRAIN_SEED))
    diverged = r"^[YQ]: \d+ non-finite entries at step \d+ from finite parameters"
    with pytest.raises(FloatingPointError, match=diverged) as acc:
        acc_trainer.train(small_data(), LAYER, cfg, rng=np.random.default_rng(TRAIN_SEED))
    assert "training diverged" in str(acc.value)
    assert "diverged" in str(ref.value)


@pytest.mark.parametrize(
    ("s", "named"),
    [
        pytest.param(None, None, id="at-the-bound"),
        pytest.param("just-past", "s", id="one-ulp-past-the-bound"),
        pytest.param(math.nan, "s", id="nan"),
        pytest.param(-math.inf, "s", id="minus-inf"),
    ],
)
def test_divergence_names_a_log_temperature_out_of_range_or_not_a_number(s: Any, named: str | None) -> None:
    """On some CPUs the step after ``|s| > s_max`` is still finite and the next one makes ``s`` NaN with
    everything else: a NaN ``s`` is out of range too, named before any other non-finite parameter."""
    s_max = acc_trainer.log_temperature_max(torch.float64)
    value = s_max if s is None else math.nextafter(s_max, math.inf) if s == "just-past" else s
    params = acc_backward.from_reference(init_params(LAYER, rng=np.random.default_rng(0)), dtype=torch.float64)
    head = replace(params.heads[0], s=torch.tensor(value, dtype=torch.float64))
    nan_W_in = torch.full_like(params.W_in, math.nan) if named else params.W_in
    params = replace(params, heads=acc_model.HeadStack.of({0: head}), W_in=nan_W_in)
    error = acc_trainer.divergence(params, torch.float64, 7, 1)
    if named is None:
        assert error is None
    else:
        assert isinstance(error, ValueError)
        assert str(error).startswith("params.heads[0].s: a log-temperature must satisfy")


def test_a_log_temperature_whose_exponential_overflows_is_refused_naming_s() -> None:
    """``HeadParams.tau`` (the check's record of ``τ``) on ``|s|`` beyond float64's exponent."""
    head = acc_model.HeadParams(
        W_Q=torch.zeros(2, 1, dtype=torch.float64),
        W_K=torch.zeros(2, 1, dtype=torch.float64),
        W_V=torch.zeros(2, 1, dtype=torch.float64),
        W_O=torch.zeros(1, 2, dtype=torch.float64),
        s=torch.tensor(3341.0, dtype=torch.float64),
    )
    with pytest.raises(ValueError, match=r"^s: a log-temperature of 3341\.0") as exc:
        _ = head.tau
    assert isinstance(exc.value.__cause__, OverflowError)


# ==================================================================================================
# Devices and dtypes, at train() and at the engine's constructor
# ==================================================================================================

NO_CUDA = not torch.cuda.is_available()
BAD_DEVICES = [
    pytest.param("cuda", ValueError, "sees no CUDA device", marks=pytest.mark.skipif(not NO_CUDA, reason="has CUDA")),
    pytest.param(f"cuda:{torch.cuda.device_count()}", ValueError, "CUDA", id="cuda-beyond-the-last"),
    pytest.param("CPU", ValueError, "not a torch device", id="CPU-upper-case"),
    pytest.param("gpu", ValueError, "not a torch device", id="gpu"),
    pytest.param("meta", ValueError, "not supported", id="meta"),
    pytest.param(None, TypeError, "expected a device string", id="None"),
    pytest.param(0, TypeError, "expected a device string", id="int"),
]
BAD_DTYPES = [
    pytest.param(torch.float16, ValueError, "not supported", id="float16"),
    pytest.param(torch.bfloat16, ValueError, "not supported", id="bfloat16"),
    pytest.param(torch.int64, ValueError, "not supported", id="int64"),
    pytest.param(torch.complex128, ValueError, "not supported", id="complex128"),
    pytest.param("float32", TypeError, "expected torch.float32 or torch.float64", id="str"),
    pytest.param(np.float64, TypeError, "expected torch.float32 or torch.float64", id="numpy-dtype"),
]


def _train(**kwargs: Any) -> object:
    return acc_trainer.train(small_data(), LAYER, RUN, rng=np.random.default_rng(TRAIN_SEED), **kwargs)


def _engine(**kwargs: Any) -> object:
    return acc_trainer.AcceleratedEngine(**kwargs)


@pytest.mark.parametrize("entry", [_train, _engine], ids=["train", "AcceleratedEngine"])
@pytest.mark.parametrize(("device", "error", "says"), BAD_DEVICES)
def test_a_bad_device_is_refused_naming_device(
    entry: Callable[..., object], device: object, error: type[Exception], says: str
) -> None:
    """``"cuda"`` without CUDA (was an AssertionError from inside torch), a wrong-case or unknown
    device string (was a raw RuntimeError; now a ValueError with torch's error chained)."""
    with pytest.raises(error, match=rf"^device: .*{re.escape(says)}") as exc:
        entry(device=device)
    if device in ("CPU", "gpu"):
        assert isinstance(exc.value.__cause__, RuntimeError)


@pytest.mark.parametrize("entry", [_train, _engine], ids=["train", "AcceleratedEngine"])
@pytest.mark.parametrize(("dtype", "error", "says"), BAD_DTYPES)
def test_a_dtype_other_than_float32_or_float64_is_refused_naming_dtype(
    entry: Callable[..., object], dtype: object, error: type[Exception], says: str
) -> None:
    """float16 and bfloat16 used to train silently; only float32 and float64 are supported."""
    with pytest.raises(error, match=rf"^dtype: .*{re.escape(says)}"):
        entry(dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_supported_device_and_dtypes_are_accepted(dtype: torch.dtype) -> None:
    for device in ("cpu", torch.device("cpu")):
        engine = acc_trainer.AcceleratedEngine(dtype, device)  # type: ignore[arg-type]
        assert engine.name == f"accelerated:{str(dtype).removeprefix('torch.')}:cpu"


# ==================================================================================================
# The other public functions of accelerated/: each bad argument named (was AttributeError, a bare
# TypeError from torch, IndexError or ZeroDivisionError)
# ==================================================================================================

F64 = torch.float64
A3 = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, -1.0]], dtype=F64)
W3 = torch.tensor([1.0, 1.0, 1.0], dtype=F64)
NO_CAPTURE = torch.zeros((3, 0), dtype=F64)
SGD = acc_optim.SGD(LearningRates.uniform(0.1))
ADAM = acc_optim.Adam(LearningRates.uniform(0.1))
PARAMS = {"W_in": torch.ones(2, 3, dtype=F64)}
ADAM_STATE = acc_optim.AdamState(
    {"P": acc_optim.AdamMoments(m=torch.zeros(3, 2, dtype=F64), v=torch.zeros(3, 2, dtype=F64), t=1)}
)


def _generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


ROWS: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("init_params cfg None", lambda: acc_model.init_params(None, generator=_generator()), TypeError, "cfg"),  # type: ignore[arg-type]
    ("init_params generator int", lambda: acc_model.init_params(LAYER, generator=0), TypeError, "generator"),  # type: ignore[arg-type]
    (
        "init_params float16",
        lambda: acc_model.init_params(LAYER, generator=_generator(), dtype=torch.float16),
        ValueError,
        "dtype",
    ),
    (
        "init_params device CPU",
        lambda: acc_model.init_params(LAYER, generator=_generator(), device="CPU"),
        ValueError,
        "device",
    ),
    (
        "init_head cfg list",
        lambda: acc_model.init_head([], _generator(), dtype=F64, device=torch.device("cpu")),
        TypeError,
        "cfg",
    ),  # type: ignore[arg-type]
    ("flatten None", lambda: acc_backward.flatten(None), TypeError, "params"),  # type: ignore[arg-type]
    ("to_reference list", lambda: acc_backward.to_reference([]), TypeError, "params"),  # type: ignore[arg-type]
    ("from_reference None", lambda: acc_backward.from_reference(None, dtype=F64), TypeError, "params"),  # type: ignore[arg-type]
    ("to_host ndarray", lambda: acc_backward.to_host(np.zeros(2)), TypeError, "t"),  # type: ignore[arg-type]
    ("SGD.state_from_reference None", lambda: SGD.state_from_reference(None, dtype=F64), TypeError, "state"),  # type: ignore[arg-type]
    (
        "Adam.state_from_reference of an SGD state",
        lambda: ADAM.state_from_reference(ref_optim.SGDState(), dtype=F64),
        TypeError,
        r"state: Adam needs reference\.optim\.AdamState, got SGDState",
    ),
    (
        "SGD.state_from_reference float16",
        lambda: SGD.state_from_reference(ref_optim.SGDState(), dtype=torch.float16),
        ValueError,
        "dtype",
    ),
    ("SGD lr float", lambda: acc_optim.SGD(0.1), TypeError, "lr"),  # type: ignore[arg-type]
    ("Adam beta1 NaN", lambda: acc_optim.Adam(LearningRates.uniform(0.1), beta1=math.nan), ValueError, "Adam.beta1"),
    ("Adam eps 0", lambda: acc_optim.Adam(LearningRates.uniform(0.1), eps=0.0), ValueError, "Adam.eps"),
    ("SGD.step state None", lambda: SGD.step(None, PARAMS, PARAMS), TypeError, "state"),  # type: ignore[arg-type]
    ("Adam.step state None", lambda: ADAM.step(None, PARAMS, PARAMS), TypeError, "state"),  # type: ignore[arg-type]
    (
        "SGD.step an Adam state",
        lambda: SGD.step(acc_optim.AdamState(), PARAMS, PARAMS),
        TypeError,
        r"state: SGD needs accelerated\.optim\.SGDState, got AdamState",
    ),
    ("SGD.step params list", lambda: SGD.step(acc_optim.SGDState(), [], PARAMS), TypeError, "params"),  # type: ignore[arg-type]
    (
        "Adam.step grads of lists",
        lambda: ADAM.step(acc_optim.AdamState(), PARAMS, {"W_in": [1.0]}),
        TypeError,
        r"grads\['W_in'\]",
    ),  # type: ignore[dict-item]
    ("without_column name int", lambda: ADAM_STATE.without_column(0, 0), TypeError, "name"),  # type: ignore[arg-type]
    ("without_column column 2", lambda: ADAM_STATE.without_column("P", 2), ValueError, "column"),
    ("without_column column -1", lambda: ADAM_STATE.without_column("P", -1), ValueError, "column"),
    ("author_track S list", lambda: acc_trk.author_track([[1.0]], W3, W3, 0.5), TypeError, "S"),  # type: ignore[arg-type]
    ("author_track S not square", lambda: acc_trk.author_track(A3[:2], W3, W3, 0.5), ValueError, "S"),
    ("author_track u_minus wrong d", lambda: acc_trk.author_track(A3, W3, W3[:2], 0.5), ValueError, "u_minus"),
    ("author_track u_plus float32", lambda: acc_trk.author_track(A3, W3.float(), W3, 0.5), TypeError, "u_plus"),
    ("squared_distances Y list", lambda: acc_ddcl.squared_distances([[1.0]], A3), TypeError, "Y"),  # type: ignore[arg-type]
    ("squared_distances P wrong d", lambda: acc_ddcl.squared_distances(A3, A3[:2]), ValueError, "P"),
    ("soft_assignments T_P 0", lambda: acc_ddcl.soft_assignments(A3, 0.0), ValueError, "T_P"),
    ("ols_loss Q wrong shape", lambda: acc_ddcl.ols_loss(A3, A3, A3[:2]), ValueError, "Q"),
    (
        "residual_operator M_a wrong d",
        lambda: acc_stats.residual_operator(A3, A3[:2, :2], NO_CAPTURE),
        ValueError,
        "M_a",
    ),
    ("residual_operator Q_cap None", lambda: acc_stats.residual_operator(A3, A3, None), TypeError, "Q_cap"),  # type: ignore[arg-type]
    ("head_operators None", lambda: acc_stats.head_operators(None), TypeError, "params"),  # type: ignore[arg-type]
    ("check_agreement of None", lambda: acc_dist.check_agreement([None]), TypeError, r"prints\[0\]"),  # type: ignore[list-item]
    ("check_agreement str", lambda: acc_dist.check_agreement("ab"), TypeError, "prints"),  # type: ignore[arg-type]
    ("check_dtype_ranges cfg None", lambda: acc_trainer.check_dtype_ranges(None, None, F64), TypeError, "cfg"),  # type: ignore[arg-type]
    ("train compile str", lambda: _train(compile="yes"), TypeError, "compile"),
    ("train progress int", lambda: _train(progress=1), TypeError, "progress"),
]


@pytest.mark.parametrize(("call", "error", "name"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_accelerated_entry_points_name_the_bad_argument(
    call: Callable[[], object], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=rf"^{name}(?![A-Za-z0-9_])"):
        call()


# --------------------------------------------------------------------------------------------------
# The stacked heads (accelerated.model.HeadStack) and their optimiser state
# --------------------------------------------------------------------------------------------------


def _float64_params() -> acc_model.ModelParams:
    return acc_backward.from_reference(init_params(LAYER, rng=np.random.default_rng(3)), dtype=torch.float64)


def test_a_head_stack_without_rows_or_with_a_negative_id_is_refused_naming_heads() -> None:
    params = _float64_params()
    h = params.heads
    with pytest.raises(ValueError, match=r"heads: the layer needs at least one active head"):
        acc_model.HeadStack((), h.W_Q[:0], h.W_K[:0], h.W_V[:0], h.W_O[:0], h.s[:0])
    with pytest.raises(ValueError, match=r"heads\.ids: expected distinct ascending non-negative"):
        acc_model.HeadStack((-1,), *h.tensors())


def test_heads_of_mixed_dtypes_are_refused_not_promoted() -> None:
    head = _float64_params().heads[0]
    as32 = acc_model.HeadParams(
        *(getattr(head, f).detach().to(torch.float32) for f in ("W_Q", "W_K", "W_V", "W_O", "s"))
    )
    with pytest.raises(TypeError, match=r"heads\[1\]: dtype and device must be every head's"):
        acc_model.HeadStack.of({0: head, 1: as32})


def test_head_stacks_compare_by_identity() -> None:
    h = _float64_params().heads
    assert h == h
    assert h != acc_model.HeadStack(h.ids, *h.tensors())


def test_reference_moments_of_the_wrong_shape_are_refused_naming_the_head() -> None:
    """An indexed assignment into the stacked moments would broadcast a (d_k,) moment over a d×d_k row."""
    params = _float64_params()
    flat = {n: t.detach().numpy() for n, t in acc_backward.flatten(params).items()}
    moments = {n: ref_optim.AdamMoments(m=np.zeros_like(a), v=np.zeros_like(a), t=1) for n, a in flat.items()}
    bad = moments["heads.0.W_Q"]
    moments["heads.0.W_Q"] = ref_optim.AdamMoments(m=np.ones(bad.m.shape[1]), v=np.ones(bad.m.shape[1]), t=1)
    opt = acc_optim.Adam(lr=LearningRates.uniform(1e-3))
    with pytest.raises(ValueError, match=r"moments\['heads\.0\.W_Q'\]\.m has shape"):
        opt.state_from_reference(ref_optim.AdamState(moments), dtype=torch.float64, heads=params.heads)
