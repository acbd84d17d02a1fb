"""Activations -> one eigenvalue spectrum per layer; the only place with reshaping rules.

A layer's output becomes a matrix A of n samples x d features: (B, D) stays as it is,
sequence outputs (B, T, D) become (B*T, D), and convolution or other outputs (B, C, H, W)
become (B, C*H*W). The spectrum is the eigenvalues of the Gram matrix of A, centred over
samples by default: lambda_i = sigma_i**2 for the singular values sigma_i of A.

`SpectrumAccumulator` builds it from probe chunks without keeping activations when d is
the smaller side: it streams the d x d matrix (A - s)^T (A - s) and the column sums, where s
is the first chunk's column mean (a shift that keeps the centring exact in floating point
even when activations have a large common offset). When n < d it keeps the n x d rows and
takes the n x n Gram at the end instead. Either way memory is O(min(n*d, d*d)) and the
eigendecomposition is done once, in float64.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray


@dataclass(frozen=True)
class Spectrum:
    """Everything the metrics need to know about one layer's activations.

    Attributes:
        eigenvalues: Eigenvalues of the (centred) Gram matrix, descending, non-negative,
            shape (min(n_samples, n_features),); all NaN if the activations were not finite.
        unit_activity: Mean absolute (uncentred) activation of each feature, shape (n_features,).
        n_samples: Rows n of the activation matrix.
        n_features: Columns d of the activation matrix.
    """

    eigenvalues: NDArray[np.float64]
    unit_activity: NDArray[np.float64]
    n_samples: int
    n_features: int

    @property
    def is_finite(self) -> bool:
        return bool(np.isfinite(self.eigenvalues).all())


def as_matrix(activation: torch.Tensor, *, token_axis: bool = True) -> torch.Tensor:
    """Reshape a layer output (B, ...) into the (n_samples, n_features) matrix A.

    Args:
        activation: A module output whose first dimension is the batch.
        token_axis: Treat a 3-D output as (B, T, D) tokens, giving (B*T, D). Set False for
            outputs such as Conv1d's (B, C, L), which become (B, C*L).
    """
    if activation.ndim == 0:
        raise ValueError("a scalar output has no samples")
    if activation.ndim == 1:
        return activation.reshape(-1, 1)
    if activation.ndim == 3 and token_axis:
        return activation.reshape(-1, activation.shape[-1])
    return activation.reshape(activation.shape[0], -1)


HOST_EIGH_MAX_WIDTH = 256
"""Gram matrices on an accelerator up to this width are decomposed on the host.

A GPU eigendecomposition has a fixed cost of a few milliseconds (cuSOLVER's tridiagonal
reduction is a chain of small kernels and host synchronisations), spent on the stream that
the next checkpoint's forward pass is queued on. Up to this width LAPACK on one core takes
about that long or less (float64: 0.4 ms at 128, 2.1 ms at 256, 12.6 ms at 512, on a
development machine's core), so copying the Gram to the host takes the decomposition off
the GPU's critical path; wider Grams stay on the device. `benchmarks/gpu_check.sh` times
both sides per width, to place this threshold from measurements.
"""


def _solver_device(gram: torch.Tensor) -> torch.device:
    """Where `_eigenvalues` decomposes `gram`: the host for CPU and small accelerator Grams."""
    if gram.device.type == "cpu" or gram.shape[0] <= HOST_EIGH_MAX_WIDTH:
        return torch.device("cpu")
    return gram.device


def _eigenvalues(gram: torch.Tensor) -> NDArray[np.float64]:
    gram = gram.to(_solver_device(gram))
    if not torch.isfinite(gram).all():
        return np.full(gram.shape[0], np.nan)
    if gram.device.type == "cpu":
        # numpy's LAPACK (dsyevd) takes 25 ms for a 768 x 768 float64 Gram on one core of
        # the development machine, torch's 35 ms (docs/performance.md, GPT-2 section); both
        # release the GIL, so the solver thread does not stall the forward pass.
        values = np.linalg.eigvalsh(gram.numpy())[::-1].copy()
    else:
        values = torch.linalg.eigvalsh(gram).flip(0).cpu().numpy()
    # eigvalsh leaves round-off of order eps * lambda_max * dim on the null space; zero it so
    # that metrics summing sqrt(lambda) (nuclear norm, effective rank) do not count it.
    floor = values[0] * gram.shape[0] * np.finfo(np.float64).eps if values.size else 0.0
    return np.where(values > floor, values, 0.0)


def _like(tensor: torch.Tensor) -> dict:
    return {"dtype": tensor.dtype, "device": tensor.device}


def _add_gram(gram: torch.Tensor, data: torch.Tensor) -> None:
    """``gram += data.T @ data`` for float64 `data` of shape (rows, d), in place.

    On the CPU numpy computes ``data.T @ data`` by BLAS's symmetric rank-k update (syrk,
    half the flops of a general product) and, unlike scipy's BLAS wrappers, releases the GIL
    while it runs, so folding on a worker thread does not stall the forward pass.
    Elsewhere it is ``addmm_`` on the device.
    """
    if gram.device.type != "cpu":
        gram.addmm_(data.T, data)
        return
    values = data.numpy()
    # Non-finite activations make a non-finite Gram, reported as NaN metrics downstream.
    with np.errstate(invalid="ignore", over="ignore"):
        gram.numpy()[...] += values.T @ values


def _abs_column_sums(matrix: torch.Tensor) -> torch.Tensor:
    """Float64 sums of ``|A|`` over the rows, without a float64 copy of A.

    On the CPU numpy does it: torch's ``abs().sum(0, dtype=torch.float64)`` slows down on
    wide matrices (71 ms for 1,024 x 8,192 float32 on one core, numpy 7 ms; 30 ms against
    2.4 ms at 64 x 65,536), and language-model heads and convolution outputs are wide.
    """
    if matrix.device.type == "cpu" and matrix.dtype in (torch.float32, torch.float64):
        return torch.from_numpy(np.abs(matrix.numpy()).sum(0, dtype=np.float64))
    # dtype= upcasts element by element.
    return matrix.abs().sum(0, dtype=torch.float64)


ROW_GRAM_COLUMNS = 1024
"""Columns per float64 block when `_row_gram` forms an n x n Gram from kept rows."""


def _row_gram(rows: torch.Tensor, center: bool) -> torch.Tensor:
    """The n x n Gram ``(A - mean) (A - mean)^T`` of n kept rows of width d > n, in float64.

    The columns go through in blocks of `ROW_GRAM_COLUMNS`: each block is copied to float64,
    centred by its float64 column means, and added by a symmetric rank-k update, so no
    n x d float64 copy (nor its transpose) is made: for a GPT-2 head's 1,024 x 50,257
    logits that would be 400 MB. Each entry is the same float64 sum of exact float32
    products as with one product over all columns, in another order.
    """
    n_rows, n_columns = rows.shape
    gram = torch.zeros(n_rows, n_rows, dtype=torch.float64, device=rows.device)
    for start in range(0, n_columns, ROW_GRAM_COLUMNS):
        block = rows[:, start : start + ROW_GRAM_COLUMNS].to(torch.float64)
        if center:
            block -= block.mean(0)
        # (n, k) -> its transpose (k, n), so that `_add_gram` adds block @ block.T.
        _add_gram(gram, block.T)
    return gram


class SpectrumAccumulator:
    """Streams one layer's output chunks into its `Spectrum`.

    Args:
        n_samples_total: Probe samples that will be fed (first dimension, over all chunks).
        center: Centre the activation matrix over samples before taking the spectrum.
        token_axis: See `as_matrix`.
    """

    def __init__(self, n_samples_total: int, *, center: bool = True, token_axis: bool = True):
        self.n_samples_total = n_samples_total
        self.center = center
        self.token_axis = token_axis
        self._rows = 0
        self._shift: torch.Tensor | None = None
        self._gram: torch.Tensor | None = None
        self._col_sum: torch.Tensor | None = None
        self._abs_sum: torch.Tensor | None = None
        self._kept: list[torch.Tensor] | None = None

    def update(self, activation: torch.Tensor) -> None:
        """Add one chunk of a layer's output, shape (batch, ...)."""
        matrix = as_matrix(activation.detach(), token_axis=self.token_axis)
        if self._abs_sum is None:
            self._start(matrix, int(activation.shape[0]))
        self._rows += matrix.shape[0]
        self._abs_sum += _abs_column_sums(matrix)
        if self._kept is not None:
            # Keep the caller's precision: n x d float32 rows until the end.
            self._kept.append(matrix if matrix.dtype == torch.float64 else matrix.float())
            return
        data = matrix.to(torch.float64)
        # Shift in place when `data` is our own float64 copy, so that one n x d float64
        # buffer is the only temporary; never modify a float64 tensor the caller passed in.
        shifted = data.sub_(self._shift) if data is not matrix else data - self._shift
        _add_gram(self._gram, shifted)
        self._col_sum += shifted.sum(0)

    def _start(self, matrix: torch.Tensor, batch: int) -> None:
        """Choose the side from the first chunk: rows (n < d) or the d x d Gram."""
        n_features = matrix.shape[1]
        rows_per_sample = matrix.shape[0] / max(1, batch)
        expected_rows = int(round(rows_per_sample * self.n_samples_total))
        options = {"dtype": torch.float64, "device": matrix.device}
        self._abs_sum = torch.zeros(n_features, **options)
        if expected_rows < n_features:
            self._kept = []
            return
        self._shift = (
            matrix.mean(0, dtype=torch.float64)
            if self.center
            else torch.zeros(n_features, **options)
        )
        self._gram = torch.zeros(n_features, n_features, **options)
        self._col_sum = torch.zeros(n_features, **options)

    def finalize(self) -> Spectrum:
        """Return the layer's spectrum; the accumulator should not be reused."""
        if self._abs_sum is None or self._rows == 0:
            raise ValueError("no activations were accumulated")
        if self._kept is not None:
            gram = _row_gram(torch.cat(self._kept), self.center)
            self._kept = None
        else:
            gram = self._gram
            if self.center:
                gram = gram - torch.outer(self._col_sum, self._col_sum) / self._rows
        return Spectrum(
            eigenvalues=_eigenvalues(gram),
            unit_activity=(self._abs_sum / self._rows).cpu().numpy(),
            n_samples=self._rows,
            n_features=int(self._abs_sum.shape[0]),
        )


def compute_spectrum(
    activation: torch.Tensor | np.ndarray, *, center: bool = True, token_axis: bool = True
) -> Spectrum:
    """Spectrum of one whole activation tensor (B, ...) or matrix (n_samples, n_features)."""
    tensor = torch.as_tensor(activation)
    accumulator = SpectrumAccumulator(int(tensor.shape[0]), center=center, token_axis=token_axis)
    accumulator.update(tensor)
    return accumulator.finalize()


SMALL_MAX_SIDE = 256
"""Layers whose Gram side (min(n_samples, n_features)) is at most this take `small_spectra`'s
batched path: for the many small measurements of an in-training tracker, the fixed cost of
one accumulator, one LAPACK call and one metrics pass per layer outweighs the arithmetic."""


def small_spectra(
    activations: dict[Hashable, torch.Tensor],
    *,
    center: bool = True,
    token_axes: dict[Hashable, bool] | None = None,
) -> dict[Hashable, Spectrum]:
    """Spectra of several whole layer outputs; the small ones with little fixed cost.

    The small matrices of equal shape are stacked and copied once to float64; their
    centring, unit activity and Grams (the smaller side) are one batched operation each,
    and their eigenvalues one batched ``eigvalsh``, with the same floor on round-off as
    `compute_spectrum`, to which the result is equal up to round-off. Everything is
    torch's, on the threads torch is given (numpy's BLAS would start its own thread pool,
    whose spinning costs more CPU time than this arithmetic). The in-training tracker
    passes many steps' outputs at once (keys are any hashable), so that the fixed cost of
    each call is paid once for all of them. Outputs on an accelerator or with a Gram side
    above `SMALL_MAX_SIDE` go through `compute_spectrum`.

    Args:
        activations: Key (a layer name) -> output (B, ...).
        center: Centre over samples.
        token_axes: Key -> `token_axis` of `as_matrix` (default True).
    """
    token_axes = token_axes or {}
    spectra: dict[Hashable, Spectrum] = {}
    by_shape: dict[tuple[int, int], dict[Hashable, torch.Tensor]] = {}
    for key, output in activations.items():
        axis = token_axes.get(key, True)
        matrix = as_matrix(output.detach(), token_axis=axis)
        if matrix.device.type != "cpu" or min(matrix.shape) > SMALL_MAX_SIDE:
            spectra[key] = compute_spectrum(output, center=center, token_axis=axis)
        else:
            by_shape.setdefault((int(matrix.shape[0]), int(matrix.shape[1])), {})[key] = matrix
    for members in by_shape.values():
        spectra.update(_stacked_spectra(members, center))
    return {key: spectra[key] for key in activations}


def is_small(matrix: torch.Tensor) -> bool:
    """True when `small_spectra` takes `matrix` (an ``as_matrix`` result) by its batched path."""
    return matrix.device.type == "cpu" and min(matrix.shape) <= SMALL_MAX_SIDE


def _stacked_spectra(
    matrices: dict[Hashable, torch.Tensor], center: bool
) -> dict[Hashable, Spectrum]:
    """The spectra of several CPU matrices of one shape (n, d), in batched operations."""
    members = list(matrices.values())
    n_rows, n_cols = (int(size) for size in members[0].shape)
    # One float64 copy (callers' tensors stay intact), written by the stack itself.
    stack = torch.stack(
        members, out=torch.empty((len(members), n_rows, n_cols), dtype=torch.float64)
    )
    if center:
        mean = stack.sum(dim=1, keepdim=True) / n_rows
        stack -= mean
    tall = n_cols <= n_rows
    grams = stack.transpose(1, 2) @ stack if tall else stack @ stack.transpose(1, 2)
    side = int(grams.shape[1])
    # A NaN or infinite entry makes its matrix's sum non-finite: one reduction, no mask.
    finite = torch.isfinite(grams.sum(dim=(1, 2)))
    all_finite = bool(finite.all())
    # The unit activity, mean |a|, in place on the copy: no temporary the size of the stack
    # (allocating one on every measurement cost the tracker more than the sum itself).
    if not all_finite:  # inf - inf: take the values again
        stack = torch.stack(members).to(torch.float64)
    elif center:
        stack += mean  # the values again, to round-off far below the mean of |a|
    activity = (stack.abs_().sum(dim=1) / n_rows).numpy()
    if not all_finite:
        grams[~finite] = 0.0
    values = torch.linalg.eigvalsh(grams).numpy()[:, ::-1]
    floor = values[:, :1] * side * np.finfo(np.float64).eps
    values = np.where(values > floor, values, 0.0)
    if not all_finite:
        values[~finite.numpy()] = np.nan
    return {
        key: Spectrum(values[index], activity[index], n_rows, n_cols)
        for index, key in enumerate(matrices)
    }
