"""Replay pieces: build a run's model and probe, load a checkpoint, run the probe forward,
and turn the selected layers' outputs into spectra or full activation matrices.

`ndt.replay.track.track` strings them into the `ndt track` loop; `ndt compare` and the
in-training tracker reuse the same pieces (`prepare_run`, `layer_spectra`,
`capture_activations`, and `ndt.models.loading.load_checkpoint`), so every path computes
the same numbers.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ndt.architectures import default_layers_notices, select_layers
from ndt.core.hooks import forward_hooks, resolve_modules
from ndt.core.rows import HookRows, TokenRule
from ndt.core.spectrum import Spectrum, SpectrumAccumulator
from ndt.errors import ModelSpecError, NdtError, ProbeError, describe
from ndt.io.manifest import MANIFEST_NAME, ModelSpec, read_manifest
from ndt.io.probe import Probe, load_probe
from ndt.models.loading import resolve_dtype, run_model_spec
from ndt.models.spec import build_model
from ndt.models.trust import require_consent


@dataclass(frozen=True)
class RunSetup:
    """A model ready to replay checkpoints of one run on its probe.

    Attributes:
        model: The model, on `device`, in eval mode; weights are loaded per checkpoint.
        spec: How the model was built.
        probe: The fixed probe batch.
        layers: Qualified names of the layers to analyse, in model order.
        device: Where the forward passes run.
        dtype: The dtype of the forward passes (weights and float inputs are cast to it).
        notices: What the default choice of layers left out, for the user to know.
    """

    model: nn.Module
    spec: ModelSpec
    probe: Probe
    layers: list[str]
    device: torch.device
    dtype: str = "float32"
    notices: tuple[str, ...] = ()


def resolve_device(device: str = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a device that exists here.

    Raises:
        NdtError: for an unknown name, or CUDA asked for where none is available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise NdtError(
            f"--device '{device}' is not a device; use auto, cpu, cuda or cuda:N"
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise NdtError(f"--device {device}: CUDA is not available on this machine")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise NdtError(f"--device {device}: only {torch.cuda.device_count()} CUDA devices")
    return resolved


def prepare_run(
    ckpt_dir: str | Path,
    *,
    model: ModelSpec | None = None,
    probe: str | Path | None = None,
    layers: Sequence[str] | None = None,
    device: str | torch.device = "auto",
    trust_code: bool = False,
    dtype: str = "float32",
) -> RunSetup:
    """Build the model and read the probe, from arguments or else the folder's ndt.toml
    (or, for the model, its transformers config.json; see `run_model_spec`).

    A model given as `model` is the caller's choice; one that the folder's ndt.toml names
    runs code only with consent (`ndt.models.trust`): `trust_code`, or ``ndt trust CKPT_DIR``.

    Args:
        trust_code: Consent to run the code the folder's ndt.toml names.
        dtype: Precision of the forward passes (a key of `DTYPES`).

    Raises:
        ModelSpecError, ProbeError: when neither the arguments nor the manifest say what to
            use, or what they name cannot be built or read.
        UntrustedCodeError: if the ndt.toml names code the user has not consented to.
    """
    torch_dtype = resolve_dtype(dtype)
    manifest = read_manifest(ckpt_dir)
    if model is None and manifest is not None and manifest.model is not None:
        require_consent(
            manifest.model, source=str(Path(ckpt_dir) / MANIFEST_NAME), folder=ckpt_dir,
            trust_code=trust_code,
        )  # fmt: skip
    spec = run_model_spec(ckpt_dir, model)
    if spec is None:
        raise ModelSpecError(
            f"no model for {ckpt_dir}: pass --model (a zoo name, hf, package.module:factory or "
            "file.py:factory), write an ndt.toml there, or point at a folder with a config.json"
        )
    probe_path = probe or (manifest.probe if manifest else None)
    if probe_path is None:
        raise ProbeError(
            f"no probe for {ckpt_dir}: pass --probe FILE.safetensors (see `ndt probe`) or name "
            "one in its ndt.toml"
        )
    target = device if isinstance(device, torch.device) else resolve_device(device)
    built = build_model(spec, ckpt_dir).to(target, torch_dtype).eval()
    patterns = list(layers or (manifest.layers if manifest else ()))
    names = select_layers(built, patterns or None)
    notices = () if patterns else default_layers_notices(built)
    return RunSetup(built, spec, load_probe(probe_path), names, target, dtype, notices)


def _run_probe(
    model: nn.Module,
    probe: Probe,
    batch_size: int | None,
    device: torch.device,
    on_chunk: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
) -> int:
    """Forward every probe chunk in eval mode without autograd; return the chunk count.
    `on_chunk(first sample, extras)` is called before each forward pass."""
    model.eval()
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    n_chunks, start = 0, 0
    with torch.inference_mode():
        for inputs, extras in probe.chunks(batch_size, device):
            if on_chunk is not None:
                on_chunk(start, extras)
            start += int(inputs.shape[0])
            if dtype is not None:
                # Float inputs follow the forward dtype; token ids and masks stay integers.
                inputs = inputs.to(dtype) if inputs.is_floating_point() else inputs
                extras = {k: v.to(dtype) if v.is_floating_point() else v for k, v in extras.items()}
            try:
                model(inputs, **extras)
            except NdtError:
                raise
            except (RuntimeError, TypeError, ValueError, IndexError) as exc:
                source = probe.path.name if probe.path else "the probe"
                raise ProbeError(f"{source} does not fit the model: {describe(exc)}") from exc
            n_chunks += 1
    return n_chunks


def _check_calls(calls: Counter, layers: Sequence[str], n_chunks: int) -> None:
    for name in layers:
        if calls[name] == 0:
            raise NdtError(f"layer '{name}' did not run in the forward pass; choose another")
        if calls[name] != n_chunks:
            raise NdtError(
                f"layer '{name}' runs {calls[name] // n_chunks} times per forward pass, so its "
                "outputs cannot be told apart; choose a module that runs once"
            )


class Folder:
    """A worker thread that folds layer outputs into Gram matrices while the model goes on.

    At most `max_pending` jobs exist at once: `submit` blocks the forward pass until the
    worker has caught up, so the copies of layer outputs waiting to be folded never hold
    more than `max_pending` chunks, whatever the number of layers or of checkpoints whose
    folding overlaps.
    """

    def __init__(self, max_pending: int = 2) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ndt-fold")
        # Not a BoundedSemaphore: a Ctrl-C between a submit and its bookkeeping may release a
        # slot twice, which must not turn the interrupt into another error.
        self._slots = threading.Semaphore(max_pending)

    def submit(self, job: Callable[[torch.Tensor], None], output: torch.Tensor) -> Future:
        """Run ``job(copy of output)`` on the worker once a slot is free.

        The copy is taken then, on the caller's thread: a later in-place op (such as
        ``ReLU(inplace=True)``) may change the original. The slot is held until `job` ends.
        """
        self._slots.acquire()
        try:
            return self._executor.submit(self._run, job, output.clone())
        except BaseException:
            self._slots.release()
            raise

    def _run(self, job: Callable[[torch.Tensor], None], output: torch.Tensor) -> None:
        try:
            job(output)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Wait for the jobs and stop the worker."""
        self._executor.shutdown(wait=True)

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class FoldedSpectra:
    """The accumulators of one forward pass, whose last Gram updates may still be running.

    Attributes:
        accumulators: One per layer, in model order.
        pending: The folder's update jobs (empty when the hooks folded in place).
        fold_seconds: Seconds spent folding, on whichever thread did it; final once settled.
    """

    accumulators: dict[str, SpectrumAccumulator]
    pending: list[Future] = field(default_factory=list)
    fold_seconds: float = 0.0

    def settle(self) -> dict[str, SpectrumAccumulator]:
        """Wait for the folder's updates (re-raising the first error); return the accumulators."""
        wait(self.pending)
        for job in self.pending:
            job.result()
        return self.accumulators

    def spectra(self) -> dict[str, Spectrum]:
        """Settle, then the spectrum of every layer."""
        return {name: accumulator.finalize() for name, accumulator in self.settle().items()}


def fold_probe(
    model: nn.Module,
    probe: Probe,
    layers: Sequence[str],
    *,
    center: bool = True,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
    timings: dict[str, float] | None = None,
    folder: Folder | None = None,
    tokens: TokenRule | str = "all",
) -> FoldedSpectra:
    """Run the probe forward and fold each layer's output into its accumulator.

    No activation outlives its chunk: each hook folds its output into the layer's Gram
    matrix (see `ndt.core.spectrum`). With a `folder` the folding runs there and may still
    be going on when this returns, so that the last layers' updates overlap whatever the
    caller does next; `FoldedSpectra.settle` waits for them.

    Args:
        folder: Fold there, so that the Gram updates of one layer overlap the forward pass
            of the next; each hook hands over a copy of its output. None folds in the hook
            itself.
        timings: If given, the seconds the forward pass spent on folding (or handing
            outputs to the folder) go to its "gram" key.
        tokens: Rows of sequence outputs (``--tokens``; see `ndt.core.rows`).
    """
    modules = resolve_modules(model, layers)
    rows = HookRows(model, layers, tokens)
    folded = FoldedSpectra(
        {
            name: SpectrumAccumulator(
                probe.n_samples, center=center, token_axis=name not in rows.channels_first
            )
            for name in modules
        }
    )
    calls: Counter = Counter()
    spent = 0.0

    def update(name: str, output: torch.Tensor) -> None:
        started = time.perf_counter()
        folded.accumulators[name].update(output)
        folded.fold_seconds += time.perf_counter() - started

    def fold(name: str, output: torch.Tensor) -> None:
        nonlocal spent
        started = time.perf_counter()
        calls[name] += 1
        output = rows.apply(name, output)[0]
        if folder is None:
            folded.accumulators[name].update(output)
        else:
            folded.pending.append(folder.submit(partial(update, name), output))
        spent += time.perf_counter() - started

    with forward_hooks(modules, fold):
        try:
            n_chunks = _run_probe(model, probe, batch_size, torch.device(device), rows.chunk)
        except BaseException:
            wait(folded.pending)  # no job may outlive a failed call
            raise
    _check_calls(calls, layers, n_chunks)
    if folder is None:
        folded.fold_seconds = spent
    if timings is not None:
        timings["gram"] = timings.get("gram", 0.0) + spent
    return folded


def layer_spectra(
    model: nn.Module,
    probe: Probe,
    layers: Sequence[str],
    *,
    center: bool = True,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
    tokens: TokenRule | str = "all",
) -> dict[str, Spectrum]:
    """One spectrum per layer for the model's current weights, streaming over probe chunks."""
    return fold_probe(
        model, probe, layers, center=center, batch_size=batch_size, device=device, tokens=tokens
    ).spectra()


def capture_activations(
    model: nn.Module,
    probe: Probe,
    layers: Sequence[str],
    *,
    batch_size: int | None = None,
    device: torch.device | str = "cpu",
    tokens: TokenRule | str = "all",
    row_samples: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Full outputs of the selected layers on the whole probe, shape (n_samples, ...),
    float32 on the CPU. Memory grows with the probe: use `layer_spectra` for metrics.

    A sequence layer pooled by `tokens`, or unpadded by the probe's attention_mask, gives
    its rows instead, (n_rows, D) (see `ndt.core.rows`); `row_samples`, if given, then
    receives each row's probe sample under the layer's name.
    """
    modules = resolve_modules(model, layers)
    rows = HookRows(model, layers, tokens)
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    samples: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    calls: Counter = Counter()

    def keep(name: str, output: torch.Tensor) -> None:
        calls[name] += 1
        output, which = rows.apply(name, output)
        chunks[name].append(output.to("cpu", torch.float32))
        if which is not None:
            samples[name].append(which.cpu())

    with forward_hooks(modules, keep):
        n_chunks = _run_probe(model, probe, batch_size, torch.device(device), rows.chunk)
    _check_calls(calls, layers, n_chunks)
    if row_samples is not None:
        row_samples.update({name: torch.cat(found) for name, found in samples.items() if found})
    return {name: _joined(chunks[name]) for name in layers}


def _joined(chunks: list[torch.Tensor]) -> torch.Tensor:
    """The chunks as one tensor (a single chunk as it is, without a copy)."""
    return chunks[0] if len(chunks) == 1 else torch.cat(chunks)
