"""`ndt compare`: replay two checkpoints of a tracked run on its recorded probe and compare
every selected layer before and after (see `ndt.analysis`).

The steps come from the results file: ``step`` picks the last checkpoint strictly before it
and the first at or after it (``window`` moves each side further out), ``before``/``after``
name both, and with neither the top transition of ``ndt jumps`` is used (its peak interval),
or, when that run found none, the largest change among its per-curve rows. The
model, probe and checkpoint folder come from the file's provenance; a probe whose sha256 no
longer matches is refused, since its activations would not be the ones `track` measured.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch

from ndt.analysis.compare_record import (
    CheckpointRecord,
    CompareRecord,
    ProbeFileRecord,
    layer_record,
    record_to_dict,
)
from ndt.analysis.compare_settings import CompareSettings
from ndt.analysis.layer_comparison import CHANGE_SCORE, compare_layer, rank_layers
from ndt.core.rows import channels_first_layers
from ndt.errors import CheckpointError, ModelSpecError, NdtError, ProbeError, ResultsFormatError
from ndt.io.checkpoints import Checkpoint, discover_checkpoints
from ndt.io.file_replace import write_text_atomic
from ndt.io.json_text import to_json
from ndt.io.manifest import ModelSpec
from ndt.io.probe import file_sha256
from ndt.io.store import Provenance, read_results
from ndt.models.loading import load_checkpoint
from ndt.models.trust import require_consent
from ndt.replay.engine import capture_activations, prepare_run


@dataclass(frozen=True)
class StepChoice:
    """The two checkpoints to compare and why they were chosen."""

    before: int
    after: int
    reason: str
    note: str = ""


def _most_significant(jumps: pd.DataFrame) -> pd.Series:
    order = [c for c in ("q_value", "p_value") if c in jumps.columns]
    ranked = jumps.assign(_abs_score=jumps["score"].abs() if "score" in jumps else 0.0)
    ranked = ranked.sort_values([*order, "_abs_score"], ascending=[True] * len(order) + [False])
    return ranked.iloc[0]


def choose_steps(
    steps: Sequence[int],
    *,
    step: int | None = None,
    window: int = 0,
    before: int | None = None,
    after: int | None = None,
    jumps: pd.DataFrame | None = None,
    transitions: pd.DataFrame | None = None,
    largest_change: Sequence[int] = (),
) -> StepChoice:
    """Pick the before and after checkpoints among the recorded `steps` (see module doc).

    Raises:
        NdtError: for a step outside the recorded range, a named step that was not recorded,
            before >= after, a negative window, or no step and no recorded jumps.
    """
    steps = sorted(int(s) for s in steps)
    if not steps:
        raise NdtError("the results file records no steps; run `ndt track` first")
    span = f"the recorded range is {steps[0]}..{steps[-1]} ({len(steps)} checkpoints)"
    if window < 0:
        raise NdtError(f"--window must be at least 0, got {window}")
    if (before is None) != (after is None):
        raise NdtError("--before and --after go together; give both, or --step instead")
    if before is not None and after is not None:
        for value in (before, after):
            if value not in steps:
                near = sorted(steps, key=lambda s: abs(s - value))[:3]
                raise NdtError(
                    f"step {value} is not a recorded checkpoint; nearest are "
                    f"{', '.join(map(str, sorted(near)))} ({span})"
                )
        if before >= after:
            raise NdtError(f"--before {before} must be earlier than --after {after}")
        return StepChoice(before, after, f"--before {before} --after {after}")
    reason = f"--step {step}"
    if step is None:
        if transitions is not None and not transitions.empty:
            top = transitions.sort_values("rank").iloc[0]
            first, last = int(top["peak_prev_step"]), int(top["peak_step"])
            return StepChoice(
                first,
                last,
                f"the top transition of `ndt jumps` ({int(top['prev_step'])}→"
                f"{int(top['step'])}, p = {top['p_value']:.2g}), at its peak {first}→{last}",
            )
        if jumps is None or jumps.empty or "step" not in jumps.columns:
            raise NdtError(
                "no --step given and the results file has no jumps; run `ndt jumps` first or "
                "pass --step S"
            )
        if transitions is not None and len(largest_change) >= 2:
            first, last = int(largest_change[0]), int(largest_change[1])
            note = f"no significant transition; comparing the largest change, step {first}→{last}"
            return StepChoice(first, last, "the largest change of `ndt jumps`", note)
        row = _most_significant(jumps)
        where = ", ".join(f"{k} {row[k]}" for k in ("layer", "metric") if k in row.index)
        step = int(row["step"])
        reason = f"most significant jump at step {step} ({where})"
    if not steps[0] < step <= steps[-1]:
        raise NdtError(
            f"step {step} has no recorded checkpoint strictly before it and one at or after "
            f"it; {span}"
        )
    after_index = next(i for i, s in enumerate(steps) if s >= step) + window
    before_index = max(i for i, s in enumerate(steps) if s < step) - window
    if before_index < 0 or after_index >= len(steps):
        raise NdtError(
            f"--window {window} around step {step} runs past the recorded checkpoints; {span}"
        )
    if window:
        reason += f", window {window}"
    return StepChoice(steps[before_index], steps[after_index], reason)


def locate_checkpoint(
    directory: Path, step: int, recorded: str | None, probe: Path, step_scale: int = 1
) -> Checkpoint:
    """The checkpoint of `step` in `directory`, where `track` found it (the file it recorded,
    else the one whose step, mapped by the recorded `step_scale`, is `step`).

    Raises:
        CheckpointError: naming where it looked and suggesting --ckpts.
    """
    where = directory / recorded if recorded else directory
    hint = "pass --ckpts DIR if the checkpoints moved"
    if not directory.is_dir():
        raise CheckpointError(
            f"checkpoint folder {directory} recorded by `ndt track` does not exist; {hint}"
        )
    try:
        every = discover_checkpoints(
            directory, exclude=[probe], notes=[], step_scale=step_scale if step_scale > 1 else None
        )
    except CheckpointError:
        every = []
    # The file `track` recorded for the step first: its step may have been mapped
    # (--step-scale) when `track` ran.
    found = [c for c in every if recorded and c.path == directory / recorded]
    found = found or [c for c in every if c.step == step]
    if not found:
        raise CheckpointError(f"no checkpoint for step {step} at {where}; {hint}")
    # The step as recorded (a --step-scale run maps save indices to steps).
    return replace(found[0], step=step)


def _largest_change(settings: dict[str, object]) -> tuple[int, ...]:
    value = settings.get("largest_change", "[]")
    try:
        parsed = json.loads(value) if isinstance(value, str) else list(value)
        return tuple(int(v) for v in parsed[:2])
    except (TypeError, ValueError):
        return ()


def _recorded_files(checkpoints: pd.DataFrame | None) -> dict[int, str]:
    if checkpoints is None or "file" not in checkpoints.columns:
        return {}
    return {int(s): str(f) for s, f in zip(checkpoints["step"], checkpoints["file"], strict=True)}


def _checked_probe(
    provenance: Provenance, results_path: Path, given: str | Path | None = None
) -> Path:
    probe = Path(given) if given is not None else Path(provenance.probe_path)
    if given is not None and not probe.is_file():
        raise ProbeError(f"probe {probe} (--probe) does not exist")
    if not provenance.probe_path and given is None or not probe.is_file():
        raise ProbeError(
            f"probe {probe} recorded in {results_path} does not exist; restore it or pass "
            "--probe FILE"
        )
    digest = file_sha256(probe)
    if provenance.probe_sha256 and digest != provenance.probe_sha256:
        raise ProbeError(
            f"probe {probe} changed since `ndt track` (sha256 {provenance.probe_sha256[:12]}... "
            f"recorded, {digest[:12]}... now); restore it or run `ndt track --overwrite`"
        )
    return probe


def compare_run(
    results: str | Path = "results.h5",
    *,
    step: int | None = None,
    window: int = 0,
    before: int | None = None,
    after: int | None = None,
    layers: Sequence[str] | None = None,
    ckpts: str | Path | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    dead_threshold: float = CompareSettings.dead_threshold,
    top_k: int = CompareSettings.top_k,
    n_components: int = CompareSettings.n_components,
    n_clusters: int = CompareSettings.n_clusters,
    seed: int = CompareSettings.seed,
    max_rows: int = CompareSettings.max_rows,
    save_activations: str | Path | None = None,
    trust_code: bool = False,
    model: ModelSpec | None = None,
    probe: str | Path | None = None,
) -> CompareRecord:
    """Replay the before and after checkpoints of a tracked run and compare every layer.

    Args:
        results: A results file written by `ndt track` (it must hold provenance).
        step, window, before, after: Which checkpoints; see `choose_steps`.
        layers: Glob patterns over module names; default the tracked layers.
        ckpts: Checkpoint folder, overriding the recorded one.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        batch_size: Probe samples per forward pass (default: all at once).
        dead_threshold, top_k, n_components, n_clusters, seed, max_rows: See CompareSettings.
        save_activations: Write both checkpoints' activations to this HDF5 file.
        trust_code: Consent to build a model whose factory the provenance names (see
            `ndt.models.trust`); zoo models and models the user trusted before need none.
        model: The model to build instead of the recorded one (the user's own choice: no
            consent needed), e.g. when its file moved.
        probe: The probe file to replay instead of the recorded path; its sha256 must still
            equal the recorded one.

    Returns:
        The comparison's record, every layer ranked by change score; each output (JSON,
        report, terminal) renders it alone (see `ndt.analysis.compare_record`).

    Raises:
        NdtError: for bad steps, missing provenance, moved checkpoints or a changed probe.
        UntrustedCodeError: if the provenance names code the user has not consented to.
    """
    path = Path(results)
    run = read_results(path)
    provenance = run.provenance
    if provenance is None or not provenance.model:
        raise ResultsFormatError(
            f"{path} has no provenance (it was not written by `ndt track`), so compare cannot "
            "tell which checkpoints, model and probe to replay; run `ndt track` to make one"
        )
    directory = Path(ckpts) if ckpts is not None else Path(provenance.checkpoint_dir)
    spec = model
    if spec is None:
        spec = ModelSpec(provenance.model, json.loads(provenance.model_kwargs or "{}"))
        location = spec.target.rpartition(":")[0]
        if location.endswith(".py") and not Path(location).is_file():
            raise ModelSpecError(
                f"model file {location} recorded in {path} does not exist; restore it or pass "
                "--model FILE.py:factory"
            )
        require_consent(
            spec, source=f"the provenance of {path}", folder=directory, trust_code=trust_code
        )
    choice = choose_steps(
        run.steps, step=step, window=window, before=before, after=after, jumps=run.jumps,
        transitions=run.transitions, largest_change=_largest_change(run.jump_settings),
    )  # fmt: skip
    probe_path = _checked_probe(provenance, path, probe)
    files = _recorded_files(run.checkpoints)
    chosen = [
        locate_checkpoint(directory, s, files.get(s), probe_path, provenance.step_scale)
        for s in (choice.before, choice.after)
    ]
    setup = prepare_run(
        directory,
        model=spec,
        probe=probe_path,
        layers=list(layers or provenance.layers) or None,
        device=device,
        dtype=provenance.dtype or "float32",
    )
    captured = {}
    tokens = provenance.tokens or "all"
    row_samples: dict[str, torch.Tensor] = {}
    for checkpoint in chosen:
        load_checkpoint(setup.model, checkpoint, setup.device)
        captured[checkpoint.step] = capture_activations(
            setup.model, setup.probe, setup.layers, batch_size=batch_size, device=setup.device,
            tokens=tokens, row_samples=row_samples,
        )  # fmt: skip
    settings = CompareSettings(
        metrics=tuple(provenance.metrics) or CompareSettings.metrics,
        center=bool(provenance.center),
        dormant_tau=float(provenance.dormant_tau),
        definitions=str(provenance.definitions),
        dead_threshold=dead_threshold,
        top_k=top_k,
        n_components=n_components,
        n_clusters=n_clusters,
        seed=seed,
        max_rows=max_rows,
    )
    channels_first = channels_first_layers(setup.model, setup.layers)
    labels = setup.probe.labels
    records = [
        compare_layer(
            name,
            captured[choice.before][name],
            captured[choice.after][name],
            # One label per row: a sequence layer's rows carry their sample's label.
            labels=labels[row_samples[name]]
            if labels is not None and name in row_samples
            else labels,
            settings=settings,
            token_axis=name not in channels_first,
        )
        for name in setup.layers
    ]
    saved = None
    if save_activations is not None:
        saved = write_activations(save_activations, captured, setup.probe.labels, chosen)
    return CompareRecord(
        results=path,
        before=CheckpointRecord(chosen[0].step, chosen[0].path),
        after=CheckpointRecord(chosen[1].step, chosen[1].path),
        chosen_by=choice.reason,
        note=choice.note or None,
        model=spec.describe(),
        probe=ProbeFileRecord(
            path=probe_path,
            sha256=setup.probe.sha256,
            n_samples=setup.probe.n_samples,
            has_labels=labels is not None,
        ),
        settings=settings,
        ranked_by=CHANGE_SCORE,
        tokens=tokens,
        labels_per_token=tuple(
            c.layer for c in records if labels is not None and c.n_rows > setup.probe.n_samples
        ),
        activations=saved,
        layers=tuple(layer_record(c) for c in rank_layers(records)),
    )


def write_activations(
    path: str | Path,
    activations: dict[int, dict[str, torch.Tensor]],
    labels: torch.Tensor | None,
    checkpoints: Sequence[Checkpoint],
) -> Path:
    """Save activations as HDF5 (reference §2.2): group ``step_<step>`` per checkpoint, one
    gzip dataset per layer of shape (n_samples, ...), the probe labels at ``/labels``."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files = {c.step: str(c.path) for c in checkpoints}
    with h5py.File(path, "w") as f:
        for step_value, layers in activations.items():
            group = f.create_group(f"step_{step_value}")
            group.attrs.update(step=step_value, checkpoint=files.get(step_value, ""))
            for name, tensor in layers.items():
                group.create_dataset(name, data=tensor.numpy(), compression="gzip")
        if labels is not None:
            f.create_dataset("labels", data=labels.cpu().numpy())
    return path


def write_json(record: CompareRecord, path: str | Path) -> Path:
    """Write `record_to_dict(record)` to `path` (schema in docs/commands/compare.md)."""
    path = Path(path)
    text = to_json(record_to_dict(record)) + "\n"
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(path, text)
