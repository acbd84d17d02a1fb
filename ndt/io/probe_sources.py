"""Build a probe batch from an array file, scikit-learn's digits, or seeded synthetic data.

Each builder returns an in-memory `Probe`; `make_probe` picks one source, writes it with
`ndt.io.probe.save_probe` and returns the probe read back with its sha256. The source and seed
are written into the file's header metadata as one JSON string (safetensors does not keep
the order of several metadata keys, and the file's bytes must not depend on it).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ndt.errors import ProbeError
from ndt.io.probe import INPUTS_KEY, LABELS_KEY, Probe, save_probe

METADATA_KEY = "ndt_probe"
ARRAY_SUFFIXES = (".npy", ".pt", ".pth", ".csv")
_SHAPE = re.compile(r"\d+(x\d+)*")


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not Linux/macOS
        return 16 * 2**30


#: A generated probe may take at most half of this machine's memory.
MAX_PROBE_BYTES = _memory_bytes() // 2


def _check_size(shape: tuple[int, ...], itemsize: int, option: str) -> None:
    size = math.prod(shape) * itemsize
    if size > MAX_PROBE_BYTES:
        text = "x".join(map(str, shape))
        raise ProbeError(
            f"{option} {text} needs {size / 2**30:.3g} GiB; at most "
            f"{MAX_PROBE_BYTES / 2**30:.3g} GiB (half this machine's memory) is allowed"
        )


def parse_shape(text: str | Sequence[int], option: str = "shape") -> tuple[int, ...]:
    """Read a shape such as ``256x64`` (or pass a sequence of ints through), every side >= 1.

    Raises:
        ProbeError: if the text is not positive integers joined by ``x``.
    """
    if isinstance(text, str):
        cleaned = text.strip().lower().replace("*", "x").replace(",", "x")
        if not _SHAPE.fullmatch(cleaned):
            raise ProbeError(f"{option} '{text}' is not a shape; expected sizes like 256x64")
        shape = tuple(int(side) for side in cleaned.split("x"))
    else:
        shape = tuple(int(side) for side in text)
    if not shape or min(shape) < 1:
        raise ProbeError(f"{option} {shape} must have every size at least 1")
    return shape


def parse_image_size(text: str | int | Sequence[int]) -> tuple[int, int]:
    """Read an image size: ``28`` (square) or ``HxW`` such as ``32x24``, each side >= 1.

    Raises:
        ProbeError: naming ``--image-size`` if the text is not one or two positive integers.
    """
    if isinstance(text, int):
        sides: tuple[int, ...] = (text,)
    elif isinstance(text, str):
        cleaned = text.strip().lower()
        if not _SHAPE.fullmatch(cleaned) or cleaned.count("x") > 1:
            raise ProbeError(
                f"--image-size '{text}' is not an image size; expected H or HxW, e.g. 28 or 32x24"
            )
        sides = tuple(int(side) for side in cleaned.split("x"))
    else:
        sides = tuple(int(side) for side in text)
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise ProbeError(f"--image-size {text} must be one or two sizes, each at least 1")
    return (sides[0], sides[-1])


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (n, c, h, w) images to `size` by antialiased bilinear interpolation.

    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
    antialias=True)``: pixel centres map to pixel centres; enlarging is plain bilinear
    interpolation, shrinking averages with a triangle filter widened by the scale factor (as
    Pillow's ``Image.resize(BILINEAR)``), so values stay within the input's range.
    """
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    resized = torch.nn.functional.interpolate(
        images, size=size, mode="bilinear", align_corners=False, antialias=True
    )
    return resized.contiguous()


def digits_probe(
    n_samples: int,
    seed: int = 0,
    image: bool = False,
    image_size: tuple[int, int] | str | int | None = None,
) -> Probe:
    """A class-balanced, seeded subset of scikit-learn's bundled 8x8 digits (1797 images).

    Each class contributes ``n_samples // 10`` images, the first ``n_samples % 10`` classes one
    more; the chosen images are then shuffled, all with ``np.random.default_rng(seed)``.

    Args:
        n_samples: Number of images, at most 10 times the size of the smallest class (1740).
        seed: Seed of the subset and its order.
        image: Return inputs as (n_samples, 1, 8, 8) images instead of (n_samples, 64) rows.
        image_size: With `image`, resize the images to this (height, width) (or ``"28"``,
            ``"32x24"``) by antialiased bilinear interpolation (see `resize_images`).

    Returns:
        A probe with float32 ``inputs`` scaled to [0, 1] and int64 ``labels`` (n_samples,).

    Raises:
        ProbeError: if `n_samples` is below 1 or more than the balanced subset can hold, or
            `image_size` is malformed or given without `image`.
    """
    from sklearn.datasets import load_digits

    if image_size is not None:
        if not image:
            raise ProbeError("--image-size applies to --digits with --image")
        image_size = parse_image_size(image_size)

    data, target = load_digits(return_X_y=True)
    classes = np.unique(target)
    smallest = min(int((target == c).sum()) for c in classes)
    if not 1 <= n_samples <= smallest * classes.size:
        raise ProbeError(
            f"--digits {n_samples} is out of range; a class-balanced subset of the digits "
            f"holds 1 to {smallest * classes.size} samples"
        )
    rng = np.random.default_rng(seed)
    base, extra = divmod(n_samples, classes.size)
    chosen = [
        rng.permutation(np.flatnonzero(target == c))[: base + (index < extra)]
        for index, c in enumerate(classes)
    ]
    order = rng.permutation(np.concatenate(chosen))
    inputs = torch.from_numpy((data[order] / 16.0).astype(np.float32))
    if image:
        inputs = inputs.reshape(-1, 1, 8, 8)
        if image_size is not None:
            inputs = resize_images(inputs, image_size)
    return Probe(inputs, torch.from_numpy(target[order].astype(np.int64)))


def gaussian_probe(shape: str | Sequence[int], seed: int = 0) -> Probe:
    """Standard normal float32 inputs of `shape` (n_samples first), from ``default_rng(seed)``.

    Raises:
        ProbeError: if `shape` is malformed or would take more than half of the memory.
    """
    shape = parse_shape(shape, "--gaussian")
    _check_size(shape, 4, "--gaussian")
    values = np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)
    return Probe(torch.from_numpy(values))


def token_probe(shape: str | Sequence[int], vocab: int, seed: int = 0) -> Probe:
    """Uniform int64 token ids in ``[0, vocab)`` of `shape`, e.g. (n_samples, n_tokens).

    Raises:
        ProbeError: if `vocab` is below 1 or above int64, or the probe would take more than
            half of this machine's memory.
    """
    shape = parse_shape(shape, "--tokens")
    if vocab is None or vocab < 1:
        raise ProbeError(f"--vocab must be at least 1 for --tokens, got {vocab}")
    if vocab > 2**63 - 1:
        raise ProbeError(f"--vocab {vocab} does not fit int64 token ids")
    _check_size(shape, 8, "--tokens")
    values = np.random.default_rng(seed).integers(0, vocab, size=shape, dtype=np.int64)
    return Probe(torch.from_numpy(values))


def _read_csv(path: Path, label_column: str | None) -> dict[str, torch.Tensor]:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
        if all(_is_number(name) for name in frame.columns):
            frame = pd.read_csv(path, header=None)  # no header row: the first row is data
    except (
        ValueError,
        OSError,
    ) as exc:  # pandas raises ParserError/EmptyDataError, both ValueError
        raise ProbeError(f"cannot read {path}: {str(exc).splitlines()[0]}") from exc
    frame.columns = [str(name) for name in frame.columns]
    tensors = {}
    if label_column is not None:
        if label_column not in frame.columns:
            shown = ", ".join(frame.columns[:8])
            raise ProbeError(f"{path} has no column '{label_column}' (it has {shown})")
        tensors[LABELS_KEY] = _labels(frame.pop(label_column).to_numpy(copy=True), path)
    bad = [name for name in frame.columns if not pd.api.types.is_numeric_dtype(frame[name])]
    if bad:
        raise ProbeError(
            f"{path}: column '{bad[0]}' is not numeric; pass --label-column or drop it"
        )
    if frame.shape[1] == 0:
        raise ProbeError(f"{path} has no input columns left")
    # CSV columns are features, so even whole-number columns become float32 inputs.
    tensors[INPUTS_KEY] = torch.from_numpy(frame.to_numpy(dtype=np.float32, copy=True))
    return tensors


def _is_number(text: object) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def _read_array_file(path: Path, label_column: str | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a .npy, .pt/.pth or .csv file; a single array becomes ``inputs``."""
    if not path.is_file():
        raise ProbeError(f"array file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise ProbeError(f"cannot read '{path.name}'; expected one of {', '.join(ARRAY_SUFFIXES)}")
    if suffix == ".csv":
        return _read_csv(path, label_column)
    try:
        if suffix == ".npy":
            loaded = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # numpy and torch raise several unrelated types
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProbeError(f"cannot read {path}: {reason}") from exc
    if isinstance(loaded, torch.Tensor):
        return {INPUTS_KEY: loaded}
    if isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        if INPUTS_KEY not in loaded:
            raise ProbeError(f"{path} holds a dict without an 'inputs' tensor")
        return {str(k): v for k, v in loaded.items()}
    raise ProbeError(f"{path} holds a {type(loaded).__name__}, not a tensor or dict of tensors")


def _labels(values: np.ndarray | torch.Tensor, source: Path) -> torch.Tensor:
    labels = values if isinstance(values, torch.Tensor) else torch.from_numpy(np.array(values))
    if labels.ndim == 2 and labels.shape[1] == 1:  # a single column, as a CSV file gives
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ProbeError(f"labels from {source} have shape {tuple(labels.shape)}; expected (n,)")
    if labels.is_floating_point():
        if not torch.equal(labels, labels.round()):
            raise ProbeError(f"labels from {source} are not whole numbers")
    elif labels.dtype == torch.bool or labels.is_complex():
        raise ProbeError(f"labels from {source} have dtype {labels.dtype}; expected integers")
    return labels.to(torch.int64)


def _inputs(values: torch.Tensor, source: Path) -> torch.Tensor:
    if values.ndim == 0 or values.shape[0] == 0:
        raise ProbeError(f"inputs from {source} have shape {tuple(values.shape)}; no samples")
    if values.is_complex():
        raise ProbeError(f"inputs from {source} are complex; expected real numbers")
    # Models run in float32; float64 inputs would not match their weights.
    if values.is_floating_point() or values.dtype == torch.bool:
        return values.to(torch.float32)
    return values.to(torch.int64)


def array_probe(
    source: str | Path, labels: str | Path | None = None, label_column: str | None = None
) -> Probe:
    """A probe from an array file: ``.npy``, ``.pt``/``.pth`` (``torch.load(weights_only=True)``:
    a tensor, or a dict with ``inputs`` and optional ``labels`` and extras) or a numeric ``.csv``.

    Floating inputs become float32 and integer inputs int64 (token ids); CSV inputs are always
    float32 (one row per sample, one column per feature, a header row optional). Labels
    become int64.

    Args:
        source: The inputs file, (n_samples, ...) with samples first; CSV rows are samples.
        labels: Optional file holding the labels, shape (n_samples,).
        label_column: For a CSV source, the column holding the labels.

    Raises:
        ProbeError: if a file is missing, unreadable or of another type, a CSV column is not
            numeric, labels are not whole numbers, or the sample counts disagree.
    """
    source = Path(source)
    if label_column is not None and source.suffix.lower() != ".csv":
        raise ProbeError(f"--label-column applies to a .csv source, not '{source.name}'")
    tensors = _read_array_file(source, label_column)
    inputs = _inputs(tensors.pop(INPUTS_KEY), source)
    found = tensors.pop(LABELS_KEY, None)
    if labels is not None:
        if found is not None:
            raise ProbeError(f"{source} already holds labels; drop --labels or --label-column")
        labels = Path(labels)
        label_tensors = _read_array_file(labels)
        if len(label_tensors) != 1:
            raise ProbeError(f"{labels} holds {len(label_tensors)} tensors; expected one")
        found, source_of_labels = next(iter(label_tensors.values())), labels
    else:
        source_of_labels = source
    label_tensor = None if found is None else _labels(found, source_of_labels)
    for name, tensor in [(LABELS_KEY, label_tensor), *tensors.items()]:
        if tensor is not None and (tensor.ndim == 0 or tensor.shape[0] != inputs.shape[0]):
            raise ProbeError(
                f"'{name}' has {tensor.shape[0] if tensor.ndim else 0} samples but the inputs "
                f"from {source.name} have {inputs.shape[0]}"
            )
    return Probe(inputs, label_tensor, tensors)


def make_probe(
    path: str | Path,
    *,
    digits: int | None = None,
    gaussian: str | Sequence[int] | None = None,
    tokens: str | Sequence[int] | None = None,
    vocab: int | None = None,
    source: str | Path | None = None,
    labels: str | Path | None = None,
    label_column: str | None = None,
    image: bool = False,
    image_size: str | int | Sequence[int] | None = None,
    seed: int = 0,
    overwrite: bool = False,
    text: str | Path | None = None,
    tokenizer: str | Path | None = None,
    max_length: int | None = None,
    text_column: str | None = None,
) -> Probe:
    """Build a probe from exactly one source and write it to `path` (safetensors).

    Args:
        path: The probe file to write.
        digits: Number of class-balanced digits samples (see `digits_probe`).
        gaussian: Shape of standard normal inputs, e.g. ``"256x64"``.
        tokens: Shape of random token ids, e.g. ``"64x16"``; needs `vocab`.
        vocab: Vocabulary size for `tokens`.
        source: An array file (see `array_probe`).
        labels: A labels file for `source`.
        label_column: The labels column of a CSV `source` or of a `text` table.
        image: Digits as (n, 1, 8, 8) images.
        image_size: With `image`, the images' size after resizing: ``"28"`` or ``"HxW"``.
        seed: Seed of the digits subset or the synthetic values.
        overwrite: Replace an existing file at `path`.
        text: A text file to tokenize (see `ndt.io.probe_text.text_probe`); needs `tokenizer`.
        tokenizer: The folder of a transformers tokenizer, for `text`.
        max_length: Truncate `text` samples to this many tokens.
        text_column: The text column of a `text` table or JSON lines file (default "text").

    Returns:
        The probe read back from `path`, with its sha256.

    Raises:
        ProbeError: if not exactly one source is given, an option does not apply to it, the
            file exists without `overwrite`, or the source cannot be built.
    """
    path = Path(path)
    chosen = {
        "--digits": digits,
        "--gaussian": gaussian,
        "--tokens": tokens,
        "--from": source,
        "--text": text,
    }
    given = [name for name, value in chosen.items() if value is not None]
    if len(given) != 1:
        which = "none" if not given else " and ".join(given)
        raise ProbeError(
            f"give exactly one of --digits, --gaussian, --tokens, --from, --text (got {which})"
        )
    _check_applies(given[0], vocab=vocab, labels=labels, label_column=label_column, image=image)
    if image_size is not None:
        if given[0] != "--digits":
            raise ProbeError(f"--image-size applies to --digits --image, not {given[0]}")
        if not image:
            raise ProbeError("--image-size needs --image (digits as images)")
        image_size = parse_image_size(image_size)
    _check_text_options(given[0], tokenizer, max_length, text_column)
    if path.exists() and not overwrite:
        raise ProbeError(f"{path} already exists; pass --overwrite to replace it")
    if digits is not None:
        probe = digits_probe(digits, seed=seed, image=image, image_size=image_size)
        described = {"source": "sklearn digits", "n_samples": digits, "image": image}
        if image_size is not None:
            described["image_size"] = list(image_size)
            described["resize"] = "bilinear antialias"
    elif gaussian is not None:
        probe = gaussian_probe(gaussian, seed=seed)
        described = {"source": "gaussian", "shape": list(probe.inputs.shape)}
    elif tokens is not None:
        probe = token_probe(tokens, vocab, seed=seed)
        described = {"source": "tokens", "shape": list(probe.inputs.shape), "vocab": vocab}
    elif text is not None:
        from ndt.io.probe_text import text_probe

        probe = text_probe(
            text, tokenizer, max_length=max_length, text_column=text_column or "text",
            label_column=label_column,
        )  # fmt: skip
        described = {"source": Path(text).name, "tokenizer": Path(tokenizer).name}
        if max_length is not None:
            described["max_length"] = max_length
    else:
        probe = array_probe(source, labels=labels, label_column=label_column)
        described = {"source": Path(source).name}
        if labels is not None:
            described["labels"] = Path(labels).name
    if given[0] not in ("--from", "--text"):
        described["seed"] = seed
    metadata = {METADATA_KEY: json.dumps(described, sort_keys=True)}
    return save_probe(path, probe.inputs, probe.labels, probe.extras, metadata=metadata)


def _check_applies(
    source: str, *, vocab: int | None, labels: object, label_column: object, image: bool
) -> None:
    if vocab is not None and source != "--tokens":
        raise ProbeError(f"--vocab applies to --tokens, not {source}")
    if source == "--tokens" and vocab is None:
        raise ProbeError("--tokens needs --vocab, the number of distinct token ids")
    if labels is not None and source != "--from":
        raise ProbeError(f"--labels applies to --from, not {source}")
    if label_column is not None and source not in ("--from", "--text"):
        raise ProbeError(f"--label-column applies to --from or --text, not {source}")
    if image and source != "--digits":
        raise ProbeError(f"--image applies to --digits, not {source}")


def _check_text_options(
    source: str, tokenizer: object, max_length: int | None, text_column: str | None
) -> None:
    if source == "--text" and tokenizer is None:
        raise ProbeError("--text needs --tokenizer DIR, a folder holding a saved tokenizer")
    given = {"--tokenizer": tokenizer, "--max-length": max_length, "--text-column": text_column}
    for option, value in given.items():
        if value is not None and source != "--text":
            raise ProbeError(f"{option} applies to --text, not {source}")
