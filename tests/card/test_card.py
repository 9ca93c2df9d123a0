"""The dataset card: Hub metadata that the Hub's own parsers read, every section, hostile text
kept inert, a load snippet that is valid Python."""

import re

import pytest
from huggingface_hub import DatasetCard

from aeuf.card import render_card, size_category

FACTS = {
    "name": "Example preferences", "repo_id": "me/prefs", "format": "standard",
    "columns": ["prompt", "chosen", "rejected", "margin", "tie", "chosen_model", "pref_1"],
    "license": "cc-by-nc-4.0", "license_note": "AlpacaEval prompts: non-commercial use only.",
    "languages": ["en"],
    "pool": {"source": "dataset/prompts.csv", "prompts": 64, "responses_per_prompt": 8,
             "models": ["smollm2-135m-t0.0-p1.0-m160", "alpaca_eval-example"], "skipped": 2},
    "features": "minilm+stats", "encoder": "all-MiniLM-L6-v2",
    "head": {"name": "ensemble", "members": 16}, "rules": ["aepo", "dts"], "num_annotations": 2,
    "oracle": {"name": "judge", "model": "gpt-4o-mini", "template": "overall"},
    "rounds": 4, "budget": 64, "seed": 0,
    "counts": {"format": "standard", "rows": 1234, "prompts": 1230, "ties": 7, "ties_kept": 0,
               "desirable": 0, "undesirable": 0, "failed": 3, "self_labelled": 0},
    "cost": {"total": 0.4213, "requests": 2468, "tokens": 901234},
    "hygiene": {"position bias": {"value": 0.57, "note": "P(first shown wins)"},
                "parse failures": 3},
    "command": "aeuf dataset/prompts.csv --num_responses 8 --num_annotations 2",
    "aeuf_version": "0.1.0",
}


def _body(card: str) -> str:
    return card.split("\n---\n", 1)[1]


def test_front_matter_is_read_by_the_hubs_parser():
    meta = DatasetCard(render_card(FACTS)).data.to_dict()
    assert meta["license"] == "cc-by-nc-4.0" and meta["language"] == ["en"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["size_categories"] == ["1K<n<10K"]
    assert {"aeuf", "trl", "preference", "dpo"} <= set(meta["tags"])
    assert meta["annotations_creators"] == ["machine-generated"]
    assert meta["configs"] == [{"config_name": "default",
                                "data_files": [{"split": "train", "path": "data/train-*"}]}]


def test_front_matter_gives_the_datasets_library_its_data_files():
    from datasets.utils.metadata import MetadataConfigs

    configs = MetadataConfigs.from_dataset_card_data(DatasetCard(render_card(FACTS)).data)
    assert configs["default"]["data_files"] == [{"split": "train", "path": "data/train-*"}]


def test_every_section_and_the_facts_are_shown():
    body = _body(render_card(FACTS))
    for heading in ("Columns", "How it was made", "Counts", "Cost", "Judge hygiene",
                    "Limitations", "How to load it", "Licence"):
        assert f"\n## {heading}\n" in body
    for text in ("1,234", "| 7 |", "2,468", "0.4213", "0.57", "P(first shown wins)",
                 "gpt-4o-mini", "overall", "ensemble (members=16)", "aepo, dts",
                 "minilm+stats", "| prompts skipped while reading (too few responses) | 2 |",
                 FACTS["command"], "non-commercial", "`margin`"):
        assert text in body, text


def test_load_snippet_is_python_for_the_format():
    for fmt, trainer in (("standard", "DPOTrainer"), ("conversational", "DPOTrainer"),
                         ("kto", "KTOTrainer")):
        body = _body(render_card({**FACTS, "format": fmt}))
        code = re.search(r"```python\n(.*?)```", body, re.S).group(1)
        compile(code, "snippet", "exec")
        assert f"{trainer}(" in code and 'load_dataset("me/prefs", split="train")' in code
    assert "median" in _body(render_card({**FACTS, "format": "kto"}))


def test_an_empty_dict_still_renders_with_unknowns():
    card = render_card({})
    meta = DatasetCard(card).data.to_dict()
    assert meta["license"] == "unknown" and meta["size_categories"] == ["unknown"]
    assert "load_from_disk(\"hf\")" in card and "unknown" in _body(card)


def test_hostile_text_stays_inert():
    evil = "x\n---\nlicense: mit\n<script>alert(1)</script> | [link](http://e.vil)"
    facts = {**FACTS, "name": evil, "license": "MIT\nother: 1", "repo_id": "a/b\"); import os",
             "pool": {**FACTS["pool"], "models": [evil], "source": evil},
             "command": "echo ```\n## injected", "hygiene": {evil: evil}}
    card = render_card(facts)
    meta = DatasetCard(card).data.to_dict()
    assert meta["license"] == "unknown" and meta["pretty_name"] == evil
    body = _body(card)
    assert "<script>" not in body and "&lt;script&gt;" in body
    assert "````\necho ```\n## injected\n````" in body  # the fence outlasts the backticks
    title = body.splitlines()[1]
    assert title.startswith("# x --- license: mit &lt;script&gt;")  # one line, inert
    assert 'load_from_disk("hf")' in body and "import os" not in body
    assert "\\| \\[link\\]" in body  # table pipes and link brackets escaped


@pytest.mark.parametrize("rows, bucket", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"),
                                          (123_456, "100K<n<1M"), (20_000_000, "n>1M")])
def test_size_categories(rows, bucket):
    assert size_category(rows) == bucket
