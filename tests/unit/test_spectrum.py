"""Reshaping rules, chunk-size invariance and the two accumulation modes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch

from ndt.core.spectrum import SpectrumAccumulator, as_matrix, compute_spectrum


def centred_eigenvalues(matrix: np.ndarray) -> np.ndarray:
    a = matrix - matrix.mean(0)
    return np.linalg.svd(a, compute_uv=False) ** 2


def test_reshaping_rules():
    assert as_matrix(torch.zeros(4, 7)).shape == (4, 7)
    assert as_matrix(torch.zeros(4, 5, 7)).shape == (20, 7)  # (B, T, D) -> (B*T, D)
    assert as_matrix(torch.zeros(4, 5, 7), token_axis=False).shape == (4, 35)
    assert as_matrix(torch.zeros(4, 3, 2, 2)).shape == (4, 12)  # (B, C, H, W) -> (B, C*H*W)
    assert as_matrix(torch.zeros(4)).shape == (4, 1)


@pytest.mark.parametrize("shape", [(200, 16), (12, 50)])  # Gram of features / of samples
@pytest.mark.parametrize("chunk", [1, 7, 200])
def test_chunk_size_invariance(shape, chunk):
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=shape) * 3 + 100.0  # a large offset stresses the centring
    accumulator = SpectrumAccumulator(shape[0])
    for start in range(0, shape[0], chunk):
        accumulator.update(torch.tensor(matrix[start : start + chunk]))
    spectrum = accumulator.finalize()
    reference = centred_eigenvalues(matrix)
    np.testing.assert_allclose(
        spectrum.eigenvalues[: reference.size], reference, rtol=1e-8, atol=1e-8 * reference[0]
    )
    np.testing.assert_allclose(spectrum.unit_activity, np.abs(matrix).mean(0), rtol=1e-12)
    assert (spectrum.n_samples, spectrum.n_features) == shape


def test_sequence_outputs_stream_tokens():
    rng = np.random.default_rng(1)
    tokens = rng.normal(size=(6, 5, 4))
    spectrum = compute_spectrum(torch.tensor(tokens))
    reference = centred_eigenvalues(tokens.reshape(30, 4))
    np.testing.assert_allclose(spectrum.eigenvalues, reference, rtol=1e-9)
    assert spectrum.n_samples == 30


def test_uncentred_spectrum():
    rng = np.random.default_rng(2)
    matrix = rng.normal(size=(40, 5)) + 2
    spectrum = compute_spectrum(matrix, center=False)
    np.testing.assert_allclose(
        spectrum.eigenvalues, np.linalg.svd(matrix, compute_uv=False) ** 2, rtol=1e-9
    )


def test_non_finite_activations_give_nan_spectrum():
    matrix = np.ones((10, 3))
    matrix[2, 1] = np.inf
    spectrum = compute_spectrum(matrix)
    assert not spectrum.is_finite


def test_finalize_without_data_is_an_error():
    with pytest.raises(ValueError, match="no activations"):
        SpectrumAccumulator(10).finalize()


def _longest_pause(work: Callable[[], object]) -> float:
    """The longest gap, in seconds, between the wake-ups of a Python thread that ticks every
    millisecond while `work` runs: about as long as `work` if it holds the GIL."""
    stamps: list[float] = []
    done = threading.Event()

    def monitor() -> None:
        while not done.is_set():
            stamps.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=monitor)
    thread.start()
    time.sleep(0.02)
    work()
    done.set()
    thread.join()
    return float(np.diff(stamps).max())


def test_gram_update_lets_other_python_threads_run():
    """The folder thread's Gram update must release the GIL, or it stalls the forward pass
    (scipy's BLAS wrappers hold it: the monitor below then sees a gap as long as the call)."""
    from ndt.core.spectrum import _add_gram

    data = torch.randn(12288, 1024, dtype=torch.float64)
    gram = torch.zeros(1024, 1024, dtype=torch.float64)
    started = time.perf_counter()
    _add_gram(gram, data)
    call = time.perf_counter() - started
    longest_gap = _longest_pause(lambda: _add_gram(gram, data))
    assert longest_gap < call / 3, (longest_gap, call)
    expected = 2 * data.T @ data
    torch.testing.assert_close(gram, expected, rtol=1e-12, atol=1e-9)


def test_cpu_eigendecomposition_releases_the_gil():
    """The solver thread's eigendecompositions run beside the next forward pass: a Python
    thread keeps running during one, and the values are the ones the Gram was built with."""
    from threadpoolctl import threadpool_limits

    from ndt.core.spectrum import _eigenvalues

    rng = np.random.default_rng(7)
    basis = np.linalg.qr(rng.normal(size=(768, 768)))[0]
    expected = np.geomspace(1e3, 1e-3, 768)  # descending, six decades
    gram = torch.from_numpy((basis * expected) @ basis.T)
    with threadpool_limits(1, user_api="blas"):  # as in `track` with one thread
        values = _eigenvalues(gram)
        started = time.perf_counter()
        for _ in range(3):
            _eigenvalues(gram)
        call = (time.perf_counter() - started) / 3
        longest_gap = _longest_pause(lambda: _eigenvalues(gram))
    assert longest_gap < call / 3, (longest_gap, call)
    np.testing.assert_allclose(values, expected, rtol=1e-8, atol=1e-12 * expected[0])


@pytest.mark.parametrize(
    ("device", "width", "expected"),
    [("cpu", 4096, "cpu"), ("meta", 8, "cpu"), ("meta", 256, "cpu"), ("meta", 257, "meta")],
)
def test_small_accelerator_grams_are_decomposed_on_the_host(device, width, expected):
    # "meta" stands in for an accelerator: a tensor with a shape and no storage.
    from ndt.core.spectrum import HOST_EIGH_MAX_WIDTH, _solver_device

    assert HOST_EIGH_MAX_WIDTH == 256
    gram = torch.empty(width, width, dtype=torch.float64, device=device)
    assert _solver_device(gram).type == expected


def test_small_spectra_equal_compute_spectrum_one_by_one():
    """The batched path (Grams of equal side stacked, one eigvalsh each) gives each layer's
    own spectrum, equal to numpy's SVD of the float64 matrix, and leaves its input alone."""
    import torch

    from ndt.core.spectrum import small_spectra

    gen = torch.Generator().manual_seed(0)
    outputs = {
        "wide": torch.randn(20, 48, generator=gen) + 2.0,  # n < d: the n x n side
        "tall": torch.randn(64, 32, generator=gen),
        "tokens": torch.randn(4, 6, 10, generator=gen),  # (B, T, D) -> (24, 10)
        "conv1d": torch.randn(8, 3, 5, generator=gen),  # token_axis False -> (8, 15)
        "rank1": torch.randn(30, 1, generator=gen) @ torch.ones(1, 12),
    }
    broken = torch.ones(5, 4)
    broken[0, 0] = float("nan")
    outputs["nan"] = broken
    same_rows = {f"l{d}": torch.randn(30, d, generator=gen) + 1.0 for d in (8, 20, 3)}
    for center in (True, False):
        got = small_spectra(same_rows, center=center)  # the usual case: one batch for all
        for name, output in same_rows.items():
            want = compute_spectrum(output, center=center).eigenvalues
            np.testing.assert_allclose(got[name].eigenvalues, want, atol=1e-10 * want[0])
        got = small_spectra(outputs, center=center, token_axes={"conv1d": False})
        assert list(got) == list(outputs)
        for name, output in outputs.items():
            want = compute_spectrum(output, center=center, token_axis=name != "conv1d")
            assert (got[name].n_samples, got[name].n_features) == (
                want.n_samples, want.n_features
            )  # fmt: skip
            np.testing.assert_allclose(got[name].unit_activity, want.unit_activity, rtol=1e-12)
            if name == "nan":
                assert not got[name].is_finite
                continue
            top = want.eigenvalues[0]
            np.testing.assert_allclose(got[name].eigenvalues, want.eigenvalues, atol=1e-10 * top)
    twins = {"a": torch.randn(40, 6, generator=gen, dtype=torch.float64) + 3.0}
    twins["b"] = twins["a"][:, :5].clone() * 2.0  # another side, same rows
    twins["c"] = torch.randn(40, 6, generator=gen, dtype=torch.float64)  # a's side
    kept = {name: value.clone() for name, value in twins.items()}
    got = small_spectra(twins, center=True)
    for name, value in twins.items():
        assert torch.equal(value, kept[name])  # a float64 input is not centred in place
        centred = value.numpy() - value.numpy().mean(0)
        want = np.linalg.svd(centred, compute_uv=False) ** 2
        np.testing.assert_allclose(got[name].eigenvalues, want, rtol=1e-10, atol=1e-10 * want[0])
        np.testing.assert_allclose(got[name].unit_activity, np.abs(value.numpy()).mean(0))


@pytest.mark.parametrize("center", [True, False])
def test_kept_rows_gram_in_column_blocks(monkeypatch, center):
    """Wide layers (n < d) form their n x n Gram block by block over the columns, with no
    n x d float64 copy; blocks of 7 over 50 columns (a ragged last block) give numpy's
    float64 SVD of the whole matrix, offset included."""
    import ndt.core.spectrum as spectrum_module

    monkeypatch.setattr(spectrum_module, "ROW_GRAM_COLUMNS", 7)
    rng = np.random.default_rng(5)
    matrix = (rng.normal(size=(12, 50)) * 0.5 + 40.0).astype(np.float32)
    accumulator = SpectrumAccumulator(12, center=center)
    for start in (0, 5):
        accumulator.update(torch.from_numpy(matrix[start : start + 5 if start == 0 else 12]))
    spectrum = accumulator.finalize()
    exact = matrix.astype(np.float64)
    reference = (
        centred_eigenvalues(exact) if center else np.linalg.svd(exact, compute_uv=False) ** 2
    )
    assert spectrum.eigenvalues.shape == (12,)
    kept = 11 if center else 12
    np.testing.assert_allclose(
        spectrum.eigenvalues[:kept], reference[:kept], rtol=1e-9, atol=1e-10 * reference[0]
    )
    if center:  # centring leaves rank n - 1
        assert spectrum.eigenvalues[11] <= 1e-12 * reference[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_unit_activity_of_wide_outputs(dtype):
    """Per-unit mean |activation| of a wide output (numpy's sum on the CPU for float32, torch's
    for other dtypes) equals the float64 mean of the same values."""
    values = torch.from_numpy(np.random.default_rng(9).normal(size=(3, 4, 5000))).to(dtype)
    spectrum = compute_spectrum(values, token_axis=False)  # (3, 20000): wider than tall
    expected = np.abs(values.double().numpy().reshape(3, -1)).mean(0)
    np.testing.assert_allclose(spectrum.unit_activity, expected, rtol=1e-12)
    assert spectrum.n_features == 20000
