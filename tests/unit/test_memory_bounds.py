"""Memory bounds of the streamed spectra (issue 7).

Two kinds of evidence:

- What a `SpectrumAccumulator` holds after `update`, counted tensor by tensor: O(d^2) state
  when n >= d, the n x d rows when n < d, and nothing that grows with the chunks fed when
  n >= d. This is exact and independent of the allocator.
- The peak resident memory of `layer_spectra` for a probe 8x larger with a fixed batch size,
  and of `track` after 8 and after 16 checkpoints, measured in fresh subprocesses. tracemalloc cannot be used: torch's CPU tensors are
  allocated outside Python's allocator and tracemalloc does not see them. Instead the child
  resets the kernel's high-water mark (writing 5 to /proc/self/clear_refs) before each call
  and reads VmHWM from /proc/self/status after it, which counts every resident page the call
  touched. A control run without chunking shows that the measurement does see activations.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ndt.core.spectrum import SpectrumAccumulator


def _held_bytes(accumulator: SpectrumAccumulator) -> int:
    """Bytes of every tensor the accumulator references (directly or in a list)."""
    total = 0
    for value in vars(accumulator).values():
        items = value if isinstance(value, list) else [value]
        total += sum(t.numel() * t.element_size() for t in items if isinstance(t, torch.Tensor))
    return total


@pytest.mark.parametrize("n_chunks", [1, 8])
def test_gram_side_state_is_d_squared_whatever_the_probe(n_chunks: int) -> None:
    d, chunk = 32, 64
    accumulator = SpectrumAccumulator(n_chunks * chunk)
    generator = torch.Generator().manual_seed(0)
    for _ in range(n_chunks):
        accumulator.update(torch.randn(chunk, d, generator=generator))
    # The d x d Gram, plus three float64 vectors (shift, column sums, |a| sums).
    assert _held_bytes(accumulator) == 8 * (d * d + 3 * d)
    assert accumulator._kept is None


def test_row_side_state_is_n_by_d_when_n_is_smaller() -> None:
    n, d = 48, 200
    accumulator = SpectrumAccumulator(n)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        accumulator.update(torch.randn(n // 3, d, generator=generator))
    # float32 rows (n x d) and the float64 |a| sums; no Gram.
    assert _held_bytes(accumulator) == 4 * n * d + 8 * d
    assert accumulator._gram is None


def test_accumulator_keeps_no_reference_to_the_chunk() -> None:
    accumulator = SpectrumAccumulator(256)
    chunk = torch.randn(256, 16)
    accumulator.update(chunk)
    held = [v for v in vars(accumulator).values() if isinstance(v, torch.Tensor)]
    assert all(t.untyped_storage().data_ptr() != chunk.untyped_storage().data_ptr() for t in held)


_CHILD = textwrap.dedent(
    """
    import gc, json, sys
    import torch
    from ndt.io.probe import Probe
    from ndt.replay.engine import layer_spectra
    from ndt.replay.allocator import return_large_blocks_to_os
    from ndt.models.zoo import mlp

    torch.set_num_threads(1)
    # As `ndt track` does: freed blocks go back to the system, so the high-water mark is the
    # memory in use, not what glibc's heaps happen to keep (which varies by +-6 MiB).
    return_large_blocks_to_os()

    def hwm_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    def rss_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    torch.manual_seed(0)
    model = mlp(64, (512, 512), 10).eval()
    layers = ["relu1", "relu2"]
    small = Probe(torch.randn(4096, 64))
    large = Probe(torch.randn(8 * 4096, 64))
    layer_spectra(model, small, layers, batch_size=1024)  # warm up threads and allocator
    peaks = {}
    for label, probe, batch in (("small", small, 1024), ("large", large, 1024),
                                ("large_unchunked", large, None)):
        gc.collect()
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        before = rss_kb()
        layer_spectra(model, probe, layers, batch_size=batch)
        peaks[label] = (hwm_kb() - before) / 1024
    print(json.dumps(peaks))
    """
)


def _clear_refs_works() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return Path("/proc/self/status").read_text().count("VmHWM") == 1
    except OSError:
        return False


@pytest.mark.skipif(not _clear_refs_works(), reason="needs Linux /proc/self/clear_refs")
def test_peak_memory_of_layer_spectra_does_not_grow_with_the_probe() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True, timeout=120
    )
    peaks = json.loads(completed.stdout.strip().splitlines()[-1])
    # A probe 8x larger in chunks of 1024: same per-chunk activations (1024 x 512, float32
    # plus one float64 copy, ~6 MiB per layer), same 512 x 512 Grams. Allow 8 MiB of slack.
    assert peaks["large"] - peaks["small"] < 8.0, peaks
    # Control: the same probe in one chunk holds 32768 x 512 activations (64 MiB float32 per
    # layer), so the measurement does see activation memory when there is some.
    assert peaks["large_unchunked"] - peaks["large"] > 64.0, peaks


_CHECKPOINTS_CHILD = textwrap.dedent(
    """
    import json, sys, tempfile
    from pathlib import Path
    import torch
    from ndt.replay.allocator import return_large_blocks_to_os
    from ndt.io.checkpoints import save_checkpoint
    from ndt.models.spec import build_model
    from ndt.io.manifest import ModelSpec, write_manifest
    from ndt.io.probe import save_probe
    from ndt.replay.track import track

    torch.set_num_threads(1)
    if sys.argv[1] == "as-cli":
        return_large_blocks_to_os()

    def hwm_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    with tempfile.TemporaryDirectory() as tmp:
        spec = ModelSpec("mlp", {"in_features": 128, "hidden": [512, 512, 512], "n_classes": 10})
        torch.manual_seed(0)
        model = build_model(spec)
        ckpts = Path(tmp) / "ckpts"
        for index in range(16):
            with torch.no_grad():
                for parameter in model.parameters():
                    parameter.add_(torch.randn_like(parameter) * 0.01)
            save_checkpoint(model, ckpts, index * 10)
        save_probe(Path(tmp) / "probe.safetensors", torch.randn(4096, 128))
        write_manifest(ckpts, spec, probe=Path(tmp) / "probe.safetensors")
        peaks = []
        track(ckpts, out=Path(tmp) / "r.h5", progress=lambda *_: peaks.append(hwm_mb()))
        print(json.dumps(peaks))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_peak_memory_of_track_does_not_grow_with_the_checkpoints() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", _CHECKPOINTS_CHILD, "as-cli"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    peaks = json.loads(completed.stdout.strip().splitlines()[-1])
    # Everything a checkpoint allocates (weights, 4096 x 512 outputs, their copies) is freed
    # before the next; the second eight checkpoints must not raise the high-water mark.
    # Without `return_large_blocks_to_os` glibc's heaps fragment and this grows by ~100 MiB.
    assert peaks[15] - peaks[7] < 8.0, peaks


def test_malloc_setting_takes_effect_on_glibc() -> None:
    import platform

    from ndt.replay.allocator import return_large_blocks_to_os

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert return_large_blocks_to_os() is expected


def test_the_command_asks_for_huge_pages_before_torch_is_imported() -> None:
    code = textwrap.dedent(
        """
        import os, sys
        os.environ.pop("THP_MEM_ALLOC_ENABLE", None)
        sys.argv = ["ndt", "--version"]
        import ndt.replay.allocator, ndt_cli.main
        seen = []
        original = ndt.replay.allocator.prefer_huge_pages
        ndt_cli.main.prefer_huge_pages = lambda: seen.append(original())
        ndt_cli.main.main()
        print(seen, os.environ.get("THP_MEM_ALLOC_ENABLE"))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert completed.stdout.strip().splitlines()[-1] == "[True] 1"
