"""Probe builders: digits subsets checked against scikit-learn's data, seeded synthetic data,
array files read back value for value, and the errors of each source."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from ndt.errors import ProbeError
from ndt.io.checkpoints import read_safetensors_metadata
from ndt.io.probe import load_probe
from ndt.io.probe_sources import (
    METADATA_KEY,
    array_probe,
    digits_probe,
    gaussian_probe,
    make_probe,
    parse_image_size,
    parse_shape,
    resize_images,
    token_probe,
)


@pytest.mark.parametrize(
    ("text", "shape"),
    [("256x64", (256, 64)), ("8", (8,)), (" 4X3x2 ", (4, 3, 2)), ((5, 6), (5, 6))],
)
def test_parse_shape(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "x", "12xa", "3x0", "-4x2", "2.5x3"])
def test_parse_shape_rejects(text):
    with pytest.raises(ProbeError, match="shape"):
        parse_shape(text)


@pytest.mark.parametrize("n_samples", [10, 37, 512, 1740])
def test_digits_probe_is_class_balanced_subset_of_sklearn_digits(n_samples):
    probe = digits_probe(n_samples, seed=3)
    assert probe.inputs.shape == (n_samples, 64)
    assert probe.inputs.dtype == torch.float32 and probe.labels.dtype == torch.int64
    base, extra = divmod(n_samples, 10)
    expected_counts = [base + (c < extra) for c in range(10)]
    assert np.bincount(probe.labels.numpy(), minlength=10).tolist() == expected_counts
    # Every row is a distinct digits image (pixels / 16, in [0, 1]) carrying its own label.
    data, target = load_digits(return_X_y=True)
    index_of = {(data[i] / 16.0).astype(np.float32).tobytes(): i for i in range(len(data))}
    indices = [index_of[row.tobytes()] for row in probe.inputs.numpy()]
    assert len(set(indices)) == n_samples
    assert target[indices].tolist() == probe.labels.tolist()
    assert 0.0 <= float(probe.inputs.min()) and float(probe.inputs.max()) <= 1.0


def test_digits_probe_seed_and_image():
    a, b, c = digits_probe(100, seed=1), digits_probe(100, seed=1), digits_probe(100, seed=2)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.inputs, c.inputs)
    image = digits_probe(100, seed=1, image=True)
    assert image.inputs.shape == (100, 1, 8, 8)
    assert torch.equal(image.inputs.reshape(100, 64), a.inputs)


@pytest.mark.parametrize("n_samples", [0, -5, 1741, 5000])
def test_digits_probe_out_of_range(n_samples):
    with pytest.raises(ProbeError, match="1 to 1740"):
        digits_probe(n_samples)


def test_gaussian_probe_matches_numpy_generator():
    probe = gaussian_probe("300x7", seed=5)
    want = np.random.default_rng(5).standard_normal((300, 7), dtype=np.float32)
    np.testing.assert_array_equal(probe.inputs.numpy(), want)
    assert probe.inputs.dtype == torch.float32 and probe.labels is None
    assert abs(float(probe.inputs.mean())) < 0.1 and abs(float(probe.inputs.std()) - 1) < 0.1
    assert not torch.equal(probe.inputs, gaussian_probe("300x7", seed=6).inputs)


def test_token_probe_range_dtype_and_seed():
    probe = token_probe("64x16", vocab=50, seed=2)
    assert probe.inputs.shape == (64, 16) and probe.inputs.dtype == torch.int64
    assert int(probe.inputs.min()) >= 0 and int(probe.inputs.max()) <= 49
    assert len(torch.unique(probe.inputs)) == 50  # 1024 draws cover a 50-token vocabulary
    assert torch.equal(probe.inputs, token_probe((64, 16), vocab=50, seed=2).inputs)
    assert not torch.equal(probe.inputs, token_probe("64x16", vocab=50, seed=3).inputs)


@pytest.mark.parametrize("vocab", [0, -1, None])
def test_token_probe_needs_a_vocabulary(vocab):
    with pytest.raises(ProbeError, match="--vocab"):
        token_probe("4x4", vocab=vocab)


def test_array_probe_npy_with_labels_file(tmp_path):
    rng = np.random.default_rng(0)
    data, labels = rng.standard_normal((20, 3, 4)), rng.integers(0, 4, 20)
    np.save(tmp_path / "x.npy", data)
    np.save(tmp_path / "y.npy", labels.astype(np.float64))  # whole numbers stored as floats
    probe = array_probe(tmp_path / "x.npy", labels=tmp_path / "y.npy")
    assert probe.inputs.dtype == torch.float32  # float64 inputs would not fit float32 models
    np.testing.assert_array_equal(probe.inputs.numpy(), data.astype(np.float32))
    assert probe.labels.dtype == torch.int64 and probe.labels.tolist() == labels.tolist()


def test_array_probe_integer_npy_stays_integer(tmp_path):
    tokens = np.arange(24, dtype=np.int32).reshape(6, 4)
    np.save(tmp_path / "t.npy", tokens)
    probe = array_probe(tmp_path / "t.npy")
    assert probe.inputs.dtype == torch.int64 and probe.inputs.tolist() == tokens.tolist()


def test_array_probe_pt_tensor_and_dict(tmp_path):
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "x.pt")
    assert torch.equal(array_probe(tmp_path / "x.pt").inputs, x)
    mask = torch.ones(8, 5, dtype=torch.bool)
    torch.save({"inputs": x, "labels": torch.arange(8), "mask": mask}, tmp_path / "d.pt")
    probe = array_probe(tmp_path / "d.pt")
    assert probe.labels.tolist() == list(range(8))
    assert set(probe.extras) == {"mask"} and torch.equal(probe.extras["mask"], mask)


def test_array_probe_csv_with_header_and_label_column(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n1.5,2,0\n3,4.25,2\n-1,0,1\n")
    probe = array_probe(tmp_path / "d.csv", label_column="label")
    assert probe.inputs.tolist() == [[1.5, 2.0], [3.0, 4.25], [-1.0, 0.0]]
    assert probe.labels.tolist() == [0, 2, 1]


def test_array_probe_csv_without_header(tmp_path):
    (tmp_path / "d.csv").write_text("1,2,3\n4,5,6\n")
    probe = array_probe(tmp_path / "d.csv")
    assert probe.inputs.dtype == torch.float32  # CSV columns are features, not token ids
    assert probe.inputs.tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("files", "kwargs", "match"),
    [
        ({}, {}, "does not exist"),
        ({"x.txt": "1 2"}, {}, "expected one of"),
        ({"x.csv": "a,b\n1,cat\n"}, {}, "column 'b' is not numeric"),
        ({"x.csv": "a,b\n1,2\n"}, {"label_column": "y"}, "no column 'y'"),
        ({"x.csv": "a,b\n1,2\n3,4\n", "l.csv": "0\n1\n2\n"}, {"labels": "l.csv"}, "3 samples"),
        ({"x.csv": "a,b\n1,2\n", "l.csv": "0.5\n"}, {"labels": "l.csv"}, "not whole numbers"),
    ],
)
def test_array_probe_errors(tmp_path, files, kwargs, match):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    source = tmp_path / next(iter(files), "missing.npy")
    if "labels" in kwargs:
        kwargs = {"labels": tmp_path / kwargs["labels"]}
    with pytest.raises(ProbeError, match=match):
        array_probe(source, **kwargs)


def test_array_probe_refuses_pickles_and_wrong_options(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ProbeError, match="cannot read"):
        array_probe(tmp_path / "o.npy")
    np.save(tmp_path / "x.npy", np.zeros((3, 2)))
    with pytest.raises(ProbeError, match="--label-column applies to a .csv"):
        array_probe(tmp_path / "x.npy", label_column="y")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ProbeError, match="cannot read"):
        array_probe(tmp_path / "bad.pt")


def test_make_probe_writes_file_with_sha256_and_metadata(tmp_path):
    path = tmp_path / "sub" / "probe.safetensors"
    written = make_probe(path, digits=40, seed=7)
    assert written.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_probe(path)
    want = digits_probe(40, seed=7)
    assert torch.equal(loaded.inputs, want.inputs) and torch.equal(loaded.labels, want.labels)
    described = json.loads(read_safetensors_metadata(path)[METADATA_KEY])
    assert described == {"image": False, "n_samples": 40, "seed": 7, "source": "sklearn digits"}


def test_make_probe_is_byte_identical_for_the_same_seed(tmp_path):
    first = make_probe(tmp_path / "a.safetensors", tokens="16x4", vocab=9, seed=1)
    second = make_probe(tmp_path / "b.safetensors", tokens="16x4", vocab=9, seed=1)
    other = make_probe(tmp_path / "c.safetensors", tokens="16x4", vocab=9, seed=2)
    assert first.sha256 == second.sha256 != other.sha256


def test_make_probe_overwrite(tmp_path):
    path = tmp_path / "p.safetensors"
    make_probe(path, gaussian="4x2")
    with pytest.raises(ProbeError, match="already exists; pass --overwrite"):
        make_probe(path, gaussian="4x2", seed=1)
    replaced = make_probe(path, gaussian="4x2", seed=1, overwrite=True)
    assert torch.equal(replaced.inputs, gaussian_probe("4x2", seed=1).inputs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, r"exactly one .*\(got none\)"),
        ({"digits": 10, "gaussian": "4x4"}, "got --digits and --gaussian"),
        ({"tokens": "4x4"}, "--tokens needs --vocab"),
        ({"gaussian": "4x4", "vocab": 3}, "--vocab applies to --tokens"),
        ({"digits": 10, "labels": "y.npy"}, "--labels applies to --from"),
        ({"gaussian": "4x4", "label_column": "y"}, "--label-column applies to --from"),
        ({"tokens": "4x4", "vocab": 3, "image": True}, "--image applies to --digits"),
    ],
)
def test_make_probe_option_errors(tmp_path, kwargs, match):
    with pytest.raises(ProbeError, match=match):
        make_probe(tmp_path / "p.safetensors", **kwargs)
    assert not (tmp_path / "p.safetensors").exists()


def _bilinear_float64(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Enlarging bilinear interpolation written out in float64: output pixel centres mapped to
    input coordinates ``(i + 0.5) * in / out - 0.5``, clamped at the borders, then the two
    neighbours weighted by distance, along rows and then columns."""

    def weights(n_in: int, n_out: int) -> np.ndarray:
        matrix = np.zeros((n_out, n_in))
        for i in range(n_out):
            x = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1.0)
            low = int(np.floor(x))
            high = min(low + 1, n_in - 1)
            matrix[i, low] += 1.0 - (x - low)
            matrix[i, high] += x - low
        return matrix

    return weights(image.shape[0], size[0]) @ image @ weights(image.shape[1], size[1]).T


@pytest.mark.parametrize("size", [(28, 28), (32, 24), (9, 17)])
def test_resize_enlarging_is_float64_bilinear(size):
    image = np.random.default_rng(1).random((8, 8))
    resized = resize_images(torch.from_numpy(image.astype(np.float32))[None, None], size)
    assert resized.shape == (1, 1, *size) and resized.dtype == torch.float32
    np.testing.assert_allclose(resized[0, 0].numpy(), _bilinear_float64(image, size), atol=1e-6)


@pytest.mark.parametrize("size", [(28, 28), (32, 24), (4, 4), (5, 12)])
def test_resize_matches_pillow_bilinear(size):
    # Pillow's BILINEAR resize widens its triangle filter when shrinking (antialiasing), as
    # the resize does; float32 images ('F' mode) so both work on the same values.
    from PIL import Image

    image = np.random.default_rng(2).random((8, 8)).astype(np.float32)
    resized = resize_images(torch.from_numpy(image)[None, None], size)[0, 0].numpy()
    pillow = Image.fromarray(image, mode="F").resize((size[1], size[0]), Image.BILINEAR)
    np.testing.assert_allclose(resized, np.asarray(pillow), atol=1e-6)


@pytest.mark.parametrize(
    ("text", "size"), [("28", (28, 28)), ("32x24", (32, 24)), (" 16X8 ", (16, 8)), (7, (7, 7))]
)
def test_parse_image_size(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text", ["0", "abc", "28x", "x28", "2x3x4", "28x0", "-3", ""])
def test_parse_image_size_refuses(text):
    with pytest.raises(ProbeError, match="--image-size"):
        parse_image_size(text)


def test_digits_image_size_resizes_the_8x8_images():
    small = digits_probe(40, seed=3, image=True)
    large = digits_probe(40, seed=3, image=True, image_size="32x24")
    assert large.inputs.shape == (40, 1, 32, 24)
    assert torch.equal(large.labels, small.labels)
    expected = np.stack(
        [_bilinear_float64(img[0].double().numpy(), (32, 24)) for img in small.inputs]
    )
    np.testing.assert_allclose(large.inputs[:, 0].numpy(), expected, atol=1e-6)
    assert 0.0 <= float(large.inputs.min()) and float(large.inputs.max()) <= 1.0
    with pytest.raises(ProbeError, match="--image-size applies to --digits with --image"):
        digits_probe(40, image_size=28)
