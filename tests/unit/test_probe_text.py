"""Token probes from text files and a saved Hugging Face tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ndt.errors import ProbeError
from ndt.io.probe_sources import make_probe
from ndt.io.probe_text import read_texts, text_probe

transformers = pytest.importorskip("transformers")
TOKENIZER = Path(__file__).parents[2] / "fixtures" / "hf-gpt2" / "tokenizer"


def test_read_texts_from_each_format(tmp_path):
    (tmp_path / "a.txt").write_text("1 + 2 = 3\n\n4 + 5 = 9\n")
    assert read_texts(tmp_path / "a.txt") == (["1 + 2 = 3", "4 + 5 = 9"], None)
    (tmp_path / "a.tsv").write_text("text\tlabel\n1 + 2 =\t3\n4 + 5 =\t9\n")
    assert read_texts(tmp_path / "a.tsv") == (["1 + 2 =", "4 + 5 ="], ["3", "9"])
    (tmp_path / "a.csv").write_text("sentence,y\n1 + 2 =,3\n")
    assert read_texts(tmp_path / "a.csv", "sentence", "y") == (["1 + 2 ="], ["3"])
    rows = [{"text": "1 + 2 =", "label": 3}, {"text": "4 + 5 =", "label": 9}]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert read_texts(tmp_path / "a.jsonl") == (["1 + 2 =", "4 + 5 ="], ["3", "9"])
    with pytest.raises(ProbeError, match="a.csv has no column 'text' \\(it has sentence, y\\)"):
        read_texts(tmp_path / "a.csv")
    (tmp_path / "b.jsonl").write_text('{"text": "x"}\nnot json\n')
    with pytest.raises(ProbeError, match="b.jsonl line 2 is not JSON"):
        read_texts(tmp_path / "b.jsonl")
    (tmp_path / "a.md").write_text("1 + 2\n")
    with pytest.raises(ProbeError, match="expected one of .txt, .tsv, .csv, .jsonl"):
        read_texts(tmp_path / "a.md")


def test_text_probe_pads_masks_and_labels(tmp_path):
    (tmp_path / "p.tsv").write_text("text\tlabel\n1 + 2 = 3\t3\n1 + 2 =\t3\n7\t7\n")
    probe = text_probe(tmp_path / "p.tsv", TOKENIZER)
    tokenizer = transformers.AutoTokenizer.from_pretrained(TOKENIZER, local_files_only=True)
    vocab = tokenizer.get_vocab()
    pad = vocab["[PAD]"]
    ids = [[vocab[w] for w in "1 + 2 = 3".split()], [vocab[w] for w in "1 + 2 =".split()]]
    assert probe.inputs.tolist() == [
        ids[0], ids[1] + [pad], [vocab["7"]] + [pad] * 4,
    ]  # fmt: skip
    assert probe.extras["attention_mask"].tolist() == [[1] * 5, [1] * 4 + [0], [1] + [0] * 4]
    assert probe.labels.tolist() == [3, 3, 7]
    short = text_probe(tmp_path / "p.tsv", TOKENIZER, max_length=2)
    assert short.inputs.tolist() == [ids[0][:2], ids[1][:2], [vocab["7"], pad]]
    (tmp_path / "bad.tsv").write_text("text\tlabel\n1 + 2\tthree\n")
    with pytest.raises(ProbeError, match="labels in bad.tsv are not integers"):
        text_probe(tmp_path / "bad.tsv", TOKENIZER)


def test_text_options_are_checked(tmp_path):
    (tmp_path / "a.txt").write_text("1 + 2\n")
    with pytest.raises(ProbeError, match="--text needs --tokenizer DIR"):
        make_probe(tmp_path / "p.safetensors", text=tmp_path / "a.txt")
    with pytest.raises(ProbeError, match="--tokenizer applies to --text, not --digits"):
        make_probe(tmp_path / "p.safetensors", digits=10, tokenizer=TOKENIZER)
    with pytest.raises(ProbeError, match="holds no tokenizer files"):
        make_probe(tmp_path / "p.safetensors", text=tmp_path / "a.txt", tokenizer=tmp_path)
    # A checkpoint folder saved without its tokenizer (config.json and weights only):
    # transformers would build an empty tokenizer there, and the probe would have no tokens.
    checkpoint = Path(__file__).parents[2] / "fixtures" / "hf-gpt2" / "run" / "checkpoint-50"
    assert (checkpoint / "config.json").is_file()
    with pytest.raises(ProbeError, match="checkpoint-50 holds no tokenizer files"):
        make_probe(tmp_path / "p.safetensors", text=tmp_path / "a.txt", tokenizer=checkpoint)
    (tmp_path / "empty.jsonl").write_text('{"text": ""}\n{"text": ""}\n')
    with pytest.raises(ProbeError, match="turned every text of empty.jsonl into no tokens"):
        make_probe(tmp_path / "p.safetensors", text=tmp_path / "empty.jsonl", tokenizer=TOKENIZER)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "tokenizer.json").write_text("{not json")
    with pytest.raises(ProbeError, match="no tokenizer transformers can read in"):
        make_probe(tmp_path / "p.safetensors", text=tmp_path / "a.txt", tokenizer=broken)
    with pytest.raises(ProbeError, match="--max-length must be at least 1"):
        make_probe(tmp_path / "p.safetensors", text=tmp_path / "a.txt", tokenizer=TOKENIZER,
                   max_length=0)  # fmt: skip
    written = make_probe(tmp_path / "p.safetensors", text=tmp_path / "a.txt", tokenizer=TOKENIZER)
    assert written.labels is None and written.inputs.dtype == torch.int64
