"""The reliability table of docs/reliability.md: what was tried, how many cases, what held.

It runs the reliability tests (the Hypothesis fuzz suite, the named malformed inputs, the
schema checks, the OS-error and Ctrl-C tests, and the kill -9 crash trials) under pytest,
counts the cases each one tried (every fuzz example and crash trial logs its exit code
through ``NDT_RELIABILITY_LOG``; the other tests count one case per test), and prints a
Markdown table. It exits 1 when any property failed.

Usage:
    python benchmarks/reliability.py                  # everything (about 3 minutes)
    python benchmarks/reliability.py --quick          # without the crash trials
    python benchmarks/reliability.py --write docs/reliability.md --seed 1
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- reliability table: begin -->", "<!-- reliability table: end -->"

# (test selector, what was tried, the property that must hold)
ROWS: list[tuple[str, str, str]] = [
    (
        "tests/fuzz/test_fuzz_results_files.py",
        "Generated corruptions of a real results file (1-3 of: attribute set to a random "
        "type or value, attribute or dataset deleted, dataset replaced by a random array or a "
        "group, file truncated) read by `jumps`, `jumps --no-write`, `summary`, `export`, "
        "`track` extending it",
        "exit 0/1/2, no traceback, one `Error:` line, previous file byte-identical on failure, "
        "no temporary file left, a written file reads back",
    ),
    (
        "tests/fuzz/test_fuzz_safetensors.py::test_generated_checkpoint_in_a_tracked_run",
        "Generated safetensors files (header length, JSON, dtypes, shapes, offsets, metadata "
        "step, data length) as a new checkpoint of a tracked run",
        "exit 0/1, no traceback; the file changes only to record an unreadable checkpoint, "
        "and every earlier row is kept",
    ),
    (
        "tests/fuzz/test_fuzz_safetensors.py::test_generated_probe",
        "The same generated safetensors files as the probe of `ndt track` (new results file "
        "or extending one)",
        "exit 0/1, no traceback, previous file byte-identical on failure",
    ),
    (
        "tests/fuzz/test_fuzz_options.py",
        "Generated values (integers to ±1e30, NaN, ±inf, text) of the numeric and text "
        "options of `jumps`, `track`, `compare` and `probe`",
        "exit 0/1/2, no traceback, previous file byte-identical on failure, no probe file "
        "written on failure",
    ),
    (
        "tests/cli/test_malformed_inputs.py",
        "The malformed inputs listed in issue 13 (out-of-range options, `--model :`, "
        "rejected factory kwargs, 0-d probe inputs, bad probe offsets, step > 2^63, a "
        "non-UTF-8 checkpoint name, a text `format_version`, integer layer names)",
        "one `Error:` line naming the cause (exit 1) or a usage error (exit 2); results file "
        "byte-identical; the non-UTF-8 name is skipped with a warning",
    ),
    (
        "tests/unit/test_results_schema.py",
        "Hand-made violations of docs/results-format.md, one per rule",
        "`read_results` names each violation and the file",
    ),
    (
        "tests/cli/test_os_errors.py",
        "OS errors in track, jumps and export (ENOSPC, EROFS, EACCES, EIO at the final "
        "flush or at the temporary file; real full and read-only tmpfs mounts where "
        "allowed), a folder as output, a missing `--csv` folder, Ctrl-C in a command",
        "one `Error: FILE: cause` line, exit 1 (Ctrl-C: `Interrupted.`, exit 130); previous "
        "file byte-identical; no temporary or 0-byte file left",
    ),
    (
        "tests/cli/test_crash_trials.py::test_kill_9_during_track_then_rerun_equals_an_"
        "uninterrupted_run",
        "`kill -9` of `ndt track` at random moments (half uniform over the run, half within "
        "20 ms after a temporary results file appears)",
        "the file left is complete; the rerun equals an uninterrupted run exactly",
    ),
    (
        "tests/cli/test_crash_trials.py::test_kill_9_during_jumps_write_then_rerun_equals_an_"
        "uninterrupted_run",
        "`kill -9` of `ndt jumps` at random moments (half within 10 ms after its temporary "
        "file appears)",
        "the file left is the old or the new one, never torn; the rerun equals an "
        "uninterrupted run",
    ),
    (
        "tests/cli/test_crash_trials.py::test_ctrl_c_at_random_moments_is_one_line_and_exit_130",
        "Ctrl-C (SIGINT) of `ndt track` at random moments from 0.05 s in (imports included)",
        "`Interrupted.` and exit 130 (or 0 when already done, or Python's silent exit by the "
        "signal once the command has returned); never a traceback; the file left is "
        "complete; the rerun equals an uninterrupted run",
    ),
]


def _run_tests(quick: bool, seed: int | None, log: Path, junit: Path) -> int:
    selectors = sorted({row[0].split("::")[0] for row in ROWS})
    command = [sys.executable, "-m", "pytest", *selectors, "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}"]  # fmt: skip
    if quick:
        command += ["-m", "not slow"]
    if seed is not None:
        command.append(f"--hypothesis-seed={seed}")
    env = {**os.environ, "NDT_RELIABILITY_LOG": str(log)}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def _outcomes(junit: Path) -> dict[str, str]:
    """node id (file::test[param]) -> passed, failed or skipped."""
    outcomes = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        node = f"{path}.py::{case.get('name')}"
        failed = case.find("failure") is not None or case.find("error") is not None
        outcomes[node] = (
            "failed" if failed else "skipped" if case.find("skipped") is not None else "passed"
        )
    return outcomes


_LABELS = {
    -9: "killed (-9)",
    -2: "ended by SIGINT after finishing (-2)",
    130: "130 with `Interrupted.`",
}


def _matches(node: str, selector: str) -> bool:
    return node == selector or node.startswith(selector + "::") or node.startswith(selector + "[")


def table(outcomes: dict[str, str], log: list[dict]) -> tuple[str, bool]:
    lines = ["| What was tried | Cases | Exit codes | What held |", "|---|---:|---|---|"]
    all_held = True
    for selector, tried, prop in ROWS:
        nodes = [n for n in outcomes if _matches(n, selector)]
        records = [r for r in log if _matches(r["test"], selector)]
        failed = [n for n in nodes if outcomes[n] == "failed"]
        skipped = [n for n in nodes if outcomes[n] == "skipped"]
        ran = [n for n in nodes if outcomes[n] != "skipped"]
        if not ran:
            lines.append(f"| {tried} | 0 | – | not run |")
            continue
        cases = len(records) if records else len(ran)
        codes = collections.Counter(r["exit"] for r in records)
        shown = ", ".join(f"{_LABELS.get(c, c)}: {n}" for c, n in sorted(codes.items())) or "–"
        held = f"**held** ({prop})" if not failed else f"**FAILED** in {', '.join(failed)}"
        if skipped:
            held += f"; {len(skipped)} skipped"
        all_held &= not failed
        lines.append(f"| {tried} | {cases} | {shown} | {held} |")
    return "\n".join(lines), all_held


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the crash trials (slow)")
    parser.add_argument("--seed", type=int, default=None, help="Hypothesis seed")
    parser.add_argument("--write", type=Path, help="replace the table in this Markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log, junit = Path(tmp) / "cases.jsonl", Path(tmp) / "junit.xml"
        _run_tests(args.quick, args.seed, log, junit)
        outcomes = _outcomes(junit)
        records = (
            [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        )
    text, held = table(outcomes, records)
    total = sum(int(row.split("|")[2]) for row in text.splitlines()[2:])
    text += f"\n\n{total} cases in all."
    print(text)
    if args.write is not None:
        document = args.write.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), flags=re.DOTALL)
        args.write.write_text(
            pattern.sub(lambda _: f"{BEGIN}\n{text}\n{END}", document), encoding="utf-8"
        )
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
