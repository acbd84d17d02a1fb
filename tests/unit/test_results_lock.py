"""One writer at a time: a held lock refuses other writers with the holder's pid, readers
never wait, and writers that run in turn keep each other's rows and /jumps."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from ndt.io.results_lock import GRACE_SECONDS, ResultsLockedError, lock_path, results_lock
from ndt.io.store import Results, read_results, write_jumps, write_results
from ndt.replay.track import track


def _results(steps) -> Results:
    steps = np.asarray(steps, dtype=np.int64)
    return Results(steps=steps, layers=["a"], metrics={"m": np.ones((len(steps), 1))})


def test_a_second_writer_is_refused_at_once_with_the_holders_pid(tmp_path, hold_lock):
    out = tmp_path / "results.h5"
    write_results(out, _results([0, 1]))
    before = out.read_bytes()
    holder = hold_lock(out)
    try:
        started = time.monotonic()
        with pytest.raises(ResultsLockedError) as caught:
            write_results(out, _results([5]))
        assert time.monotonic() - started < GRACE_SECONDS + 2
        assert str(caught.value) == (
            f"{out} is being written by another ndt process (pid {holder.pid}); wait for it "
            "or pass --wait SECONDS"
        )
        with pytest.raises(ResultsLockedError, match=f"pid {holder.pid}"):
            write_jumps(out, pd.DataFrame({"step": [1]}))
        # Readers never wait for the lock.
        started = time.monotonic()
        assert list(read_results(out).steps) == [0, 1]
        assert time.monotonic() - started < 1
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert out.read_bytes() == before
    write_results(out, _results([5]))  # free again once the holder is gone
    assert list(read_results(out).steps) == [5]
    assert lock_path(out) == tmp_path / "results.h5.lock"


def test_wait_lets_a_writer_wait_for_the_holder(tmp_path, hold_lock):
    out = tmp_path / "results.h5"
    holder = hold_lock(out)
    import threading

    release = threading.Timer(GRACE_SECONDS + 1, holder.stdin.close)
    release.start()
    try:
        write_results(out, _results([3]), wait=60)
    finally:
        release.join()
        holder.wait(timeout=30)
    assert list(read_results(out).steps) == [3]


def test_the_lock_is_reentrant_in_one_thread_and_exclusive_across_threads(tmp_path):
    import threading

    out = tmp_path / "r.h5"
    outcome = []

    def other_thread():
        try:
            write_results(out, _results([9]))
            outcome.append("wrote")
        except ResultsLockedError:
            outcome.append("refused")

    with results_lock(out):
        write_results(out, _results([1]))  # nested in the same thread
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert outcome == ["refused"]
    assert list(read_results(out).steps) == [1]


@pytest.mark.parametrize("wait", [-1.0, float("inf"), float("nan")])
def test_wait_must_be_a_finite_number_of_seconds(tmp_path, wait):
    with pytest.raises(Exception, match="--wait must be"):
        write_results(tmp_path / "r.h5", _results([1]), wait=wait)


def test_a_writer_in_between_keeps_its_rows_and_track_keeps_new_jumps(tiny_run, tmp_path):
    """While one track waits between two checkpoints, another track writes other steps and
    `write_jumps` writes /jumps: the first track's later writes keep both."""
    out = tmp_path / "r.h5"
    ckpts = tiny_run / "ckpts"
    jumps = pd.DataFrame({"layer": ["relu1"], "metric": ["stable_rank"], "step": [10]})
    done = []

    def in_between(count, total, step):
        done.append(step)
        if count == 1:
            track(ckpts, out=out, steps=(30, 40))
            write_jumps(out, jumps, {"method": "test"})

    report = track(ckpts, out=out, steps=(0, 20), progress=in_between)
    assert report.computed == [0, 10, 20]
    final = read_results(out)
    assert list(final.steps) == [0, 10, 20, 30, 40]
    pd.testing.assert_frame_equal(final.jumps, jumps)
    assert final.jump_settings == {"method": "test"}
    reference = track(ckpts, out=tmp_path / "reference.h5").results
    for name, values in final.metrics.items():
        np.testing.assert_array_equal(values, reference.metrics[name], err_msg=name)
    assert list(final.checkpoints["step"]) == [0, 10, 20, 30, 40]
