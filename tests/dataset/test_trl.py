"""TRL accepts aeuf's exports: every layout through TRL's own preference-data utilities, the
`margin` column through the RewardTrainer's pipeline, the kto layout into KTOTrainer, and two
DPO steps on CPU with the packaged SmolLM2-135M (transformers loads it from its GGUF).

The rows are exported from the example pool (dataset/prompts.csv, its gold scores as the
oracle), two prompts given a multi-turn conversation. trl comes from the `test` extra; nothing
is installed or downloaded here: a missing trl or GGUF fails these tests, never skips them.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import datasets
import numpy as np
import pytest
import torch
import transformers
import trl
from paths import REPO
from trl.data_utils import (
    is_conversational,
    maybe_apply_chat_template,
    maybe_extract_prompt,
    maybe_unpair_preference_dataset,
    unpair_preference_dataset,
)

from aeuf import dataset, io
from aeuf.backends import hf_models
from aeuf.config import ExportConfig, InputConfig
from aeuf.types import Labelled

PROMPTS = REPO / "dataset" / "prompts.csv"
HISTORY = [{"role": "system", "content": "You are terse."},
           {"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello."}]


def _labelled(pool) -> list[Labelled]:
    """One judged prompt per pool prompt, k = 3 for every third one, scored by the gold."""
    out = []
    for p in range(pool.shape[0]):
        finite = [r for r in np.roll(np.arange(pool.shape[1]), -p) if np.isfinite(pool.gold[p, r])]
        slots = tuple(int(r) for r in finite[: 3 if p % 3 == 0 else 2])
        scores = pool.gold[p, list(slots)]
        out.append(Labelled(p, slots, scores, int(np.argmax(scores)), int(np.argmin(scores)),
                            "replay-test", 0, float("nan"), 0.0, "replay",
                            tie=bool(scores.max() == scores.min())))
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, datasets.Dataset]:
    """format -> the export's hf/ folder loaded back with `datasets`."""
    pool = io.read_pool(InputConfig(path=str(PROMPTS), num_instructions=8))
    turns = [HISTORY + [{"role": "user", "content": str(q)}] if p < 2 else None
             for p, q in enumerate(pool.prompts)]
    pool = dataclasses.replace(pool, messages=np.array(turns + [None], dtype=object)[:-1])
    labs, out = _labelled(pool), {}
    for fmt in ("standard", "conversational", "kto"):
        cfg = ExportConfig(format=fmt)
        folder = tmp_path_factory.mktemp(fmt)
        paths = io.write_preferences(dataset.build_rows(pool, labs, cfg), folder, cfg)
        out[fmt] = datasets.load_from_disk(str(paths["hf"]))
    return out


@pytest.fixture(scope="module")
def smol():
    """(tokenizer, model) of the packaged SmolLM2-135M-Instruct GGUF, float32 on CPU."""
    folder, gguf = hf_models.resolve("smollm2")  # ConfigError (a failure) if the GGUF is missing
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: one thread is the fastest
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf,
                                                              dtype=torch.float32)
    # the GGUF is dequantized to float32 while loading: the weights are plain trainable tensors,
    # but the leftover quantizer marker makes Trainer refuse "a purely quantized model"
    model.hf_quantizer, model.is_quantized = None, False
    yield tok, model
    torch.set_num_threads(threads)


def _args(cls, tmp_path, **kw):
    return cls(output_dir=str(tmp_path), report_to="none", save_strategy="no", use_cpu=True,
               bf16=False, fp16=False, dataloader_num_workers=0, disable_tqdm=True, seed=0, **kw)


def _triples(ds) -> set:
    return {(str(r["prompt"]), str(r["completion"]), bool(r["label"])) for r in ds}


def test_standard_export_is_trls_standard_preference_format(exported):
    ds = exported["standard"]
    assert len(ds) >= 6 and {"prompt", "chosen", "rejected", "margin"} <= set(ds.column_names)
    for row in ds:
        assert not is_conversational(row)
        assert maybe_extract_prompt(row) == row  # an explicit prompt: nothing to extract
        assert all(isinstance(row[k], str) for k in ("prompt", "chosen", "rejected"))
    # where two responses were judged, TRL's own unpairing of the pairs gives exactly aeuf's
    # kto rows (chosen True, rejected False)
    pairs = ds.filter(lambda r: r["pref_1"] is None)
    kto = exported["kto"].filter(lambda r: r["prompt_id"] in set(pairs["prompt_id"]))
    assert len(pairs) >= 4 and _triples(unpair_preference_dataset(pairs)) == _triples(kto)


def test_conversational_export_keeps_the_turns_through_the_chat_template(exported, smol):
    tok, _ = smol
    ds = exported["conversational"]
    multi = [r for r in ds if len(r["prompt"]) > 1]
    assert len(multi) == 2 and all(is_conversational(r) for r in ds)
    for row in ds:
        text = maybe_apply_chat_template(maybe_extract_prompt(row), tok)
        turns = [m["content"] for m in row["prompt"]]
        at = [text["prompt"].index(t) for t in turns]  # every turn, in order
        assert at == sorted(at) and text["prompt"].endswith("<|im_start|>assistant\n")
        assert text["chosen"].startswith(row["chosen"][0]["content"])
        assert text["rejected"].startswith(row["rejected"][0]["content"])
    assert len(unpair_preference_dataset(ds)) == 2 * len(ds)


def test_kto_export_is_trls_unpaired_format_and_kto_trainer_takes_it(exported, smol, tmp_path):
    tok, model = smol
    ds = exported["kto"]
    assert ds.features["label"].dtype == "bool" and set(ds["label"]) == {True, False}
    assert maybe_unpair_preference_dataset(ds) is ds  # already unpaired
    ref = copy.deepcopy(model).eval()
    trainer = trl.KTOTrainer(model=model, ref_model=ref, processing_class=tok, train_dataset=ds,
                             args=_args(trl.KTOConfig, tmp_path, per_device_train_batch_size=2))
    prepared = trainer.train_dataset  # tokenized by TRL, every row kept with its label
    assert prepared["label"] == ds["label"] and all(len(x) > 0 for x in prepared["completion_ids"])


def test_margin_reaches_the_reward_trainers_batches(exported, smol, tmp_path):
    tok, model = smol
    ds = exported["standard"]
    config = copy.deepcopy(model.config)
    config.num_labels, config.pad_token_id = 1, tok.pad_token_id
    rm = transformers.AutoModelForSequenceClassification.from_config(config)  # untrained: data only
    trainer = trl.RewardTrainer(model=rm, processing_class=tok, train_dataset=ds,
                                args=_args(trl.RewardConfig, tmp_path,
                                           per_device_train_batch_size=len(ds)))
    batch = next(iter(trainer.get_train_dataloader()))
    assert sorted(batch["margin"].tolist()) == pytest.approx(sorted(ds["margin"]), abs=1e-6)
    assert min(ds["margin"]) > 0  # ties dropped: every exported pair has chosen above rejected


@pytest.mark.slow
def test_two_dpo_steps_on_exported_rows(exported, smol, tmp_path):
    tok, model = smol
    ds = exported["conversational"]
    size = [len(str(r["prompt"])) + len(r["chosen"][0]["content"]) + len(r["rejected"][0]["content"])
            for r in ds]
    rows = ds.select(np.argsort(size)[:4])  # a handful: the four shortest rows
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = trl.DPOTrainer(model=model, ref_model=copy.deepcopy(model).eval(),
                             processing_class=tok, train_dataset=rows,
                             args=_args(trl.DPOConfig, tmp_path, max_steps=2, max_length=96,
                                        per_device_train_batch_size=2, learning_rate=1e-4,
                                        logging_steps=1))
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert trainer.state.global_step == 2 and len(losses) == 2
    assert all(math.isfinite(x) for x in losses)
    moved = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert len(moved) == len(before)  # every weight got a gradient step
