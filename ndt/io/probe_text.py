"""Token probes from text: a text file tokenized by a Hugging Face tokenizer, loaded offline.

The file is plain text (``.txt``: one sample per non-empty line), a table with a header row
(``.tsv`` or ``.csv``) or JSON lines (``.jsonl``: one object per line); in the last two the
text is the column `text_column` (default ``text``) and labels, if any, the column
`label_column` (default ``label`` when there is one). The probe holds ``inputs`` (the
``input_ids``, int64, padded as the tokenizer pads), ``attention_mask`` (int64, 0 on
padding) and ``labels`` (int64) when the file has labels.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from ndt.core.rows import MASK_KEY
from ndt.errors import ProbeError, describe
from ndt.extras import import_transformers
from ndt.io.probe import Probe

TEXT_SUFFIXES = (".txt", ".tsv", ".csv", ".jsonl")


def read_texts(
    path: str | Path, text_column: str = "text", label_column: str | None = None
) -> tuple[list[str], list[str] | None]:
    """The texts of a file and their labels (None when it has no label column).

    Raises:
        ProbeError: for a missing file, another suffix, a missing column or a bad line.
    """
    path = Path(path)
    if not path.is_file():
        raise ProbeError(f"text file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise ProbeError(f"--text {path.name}: expected one of {', '.join(TEXT_SUFFIXES)}")
    content = path.read_text(encoding="utf-8")
    if suffix == ".txt":
        if label_column is not None:
            raise ProbeError(f"--label-column needs a .tsv, .csv or .jsonl file, not {path.name}")
        return [line for line in content.splitlines() if line.strip()], None
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise ProbeError(f"{path.name} line {number} is not JSON") from None
            if not isinstance(row, dict):
                raise ProbeError(f"{path.name} line {number} is not a JSON object")
            rows.append(row)
    else:
        delimiter = "\t" if suffix == ".tsv" else ","
        rows = list(csv.DictReader(content.splitlines(), delimiter=delimiter))
    if not rows:
        raise ProbeError(f"{path} holds no samples")
    if label_column is None and "label" in rows[0]:
        label_column = "label"
    for column in (text_column, label_column):
        if column is not None and any(column not in row for row in rows):
            raise ProbeError(f"{path.name} has no column '{column}' (it has {', '.join(rows[0])})")
    texts = [str(row[text_column]) for row in rows]
    labels = None if label_column is None else [str(row[label_column]) for row in rows]
    return texts, labels


def text_probe(
    path: str | Path,
    tokenizer: str | Path,
    *,
    max_length: int | None = None,
    text_column: str = "text",
    label_column: str | None = None,
) -> Probe:
    """Tokenize a text file into a probe (see the module doc).

    Args:
        path: The text file.
        tokenizer: A folder holding a tokenizer saved by transformers (a checkpoint folder,
            or the tokenizer's own folder); read offline, with no custom code.
        max_length: Truncate longer texts to this many tokens.
        text_column, label_column: Columns of a table or JSON lines file.

    Raises:
        ProbeError: for an unreadable file or tokenizer, or labels that are not integers.
    """
    texts, labels = read_texts(path, text_column, label_column)
    if max_length is not None and max_length < 1:
        raise ProbeError(f"--max-length must be at least 1, got {max_length}")
    encoder = load_tokenizer(tokenizer)
    try:
        batch = encoder(
            texts, padding=True, truncation=max_length is not None, max_length=max_length,
            return_tensors="pt", return_attention_mask=True,
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise ProbeError(f"tokenizing {Path(path).name} failed: {describe(exc)}") from None
    label_tensor = None
    if labels is not None:
        try:
            label_tensor = torch.tensor([int(value) for value in labels], dtype=torch.int64)
        except ValueError:
            raise ProbeError(f"labels in {Path(path).name} are not integers") from None
    if batch["input_ids"].shape[-1] == 0:
        raise ProbeError(f"the tokenizer in {tokenizer} turned every text of {Path(path).name} "
                         "into no tokens at all")  # fmt: skip
    extras = {MASK_KEY: batch["attention_mask"].to(torch.int64)}
    return Probe(batch["input_ids"].to(torch.int64), label_tensor, extras)


#: Files of which a saved transformers tokenizer has at least one (or a sentencepiece *.model).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt")


def load_tokenizer(folder: str | Path) -> object:
    """A transformers tokenizer saved in `folder`, loaded offline with no custom code; one
    without a pad token pads with its end-of-sequence token (masked out).

    Raises:
        ProbeError: if the folder holds no tokenizer transformers can read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ProbeError(f"--tokenizer {folder} is not a folder")
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES) and not any(
        folder.glob("*.model")
    ):
        # transformers would build an empty tokenizer from a bare config.json, and the probe
        # would have no tokens at all.
        raise ProbeError(
            f"--tokenizer {folder} holds no tokenizer files ({', '.join(_TOKENIZER_FILES)} "
            "or a *.model); point it at the folder that tokenizer.save_pretrained() wrote"
        )
    transformers = import_transformers()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            folder, local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProbeError(
            f"no tokenizer transformers can read in {folder}: {describe(exc)}"
        ) from None
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ProbeError(f"the tokenizer in {folder} has no pad or end-of-sequence token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
