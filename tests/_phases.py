"""One phase of the reference engine's growth check at a time, as the tests drive it: each measures
the state it is given (:meth:`reference.growth_phases.ReferenceBackend.measure`) and runs the phase
of :mod:`reference.growth_phases` with the reference backend."""

from __future__ import annotations

from dataclasses import replace

from reference import growth_phases as gp
from reference._arrays import F64Array
from reference.growth_phases import REFERENCE_BACKEND as REF
from reference.growth_phases import Context, PhaseResult, TrainerState
from reference.growth_statistics import Probe
from reference.log import InvariantRecord


def grow(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult[TrainerState]:
    return gp.grow_phase(REF, ctx, state, REF.measure(ctx, state, probe))


def prune(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult[TrainerState]:
    return gp.prune_phase(REF, ctx, state, REF.measure(ctx, state, probe))


def prune_prototypes(ctx: Context, state: TrainerState, probe: Probe) -> PhaseResult[TrainerState]:
    return gp.prototype_prune_phase(REF, ctx, state, REF.measure(ctx, state, probe))[0]


def track(
    ctx: Context, state: TrainerState, probe: Probe, A_res: F64Array
) -> tuple[TrainerState, tuple[float, float, float, float], tuple[InvariantRecord, ...]]:
    """The trackers and G6 on a given ``A_res`` (in place of the one measured on the probe)."""
    return gp.track_phase(REF, ctx, state, replace(REF.measure(ctx, state, probe), A_res=A_res))
