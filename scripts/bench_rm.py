"""Reward-model scoring throughput: aeuf's path against a bare transformers forward pass.

    python scripts/bench_rm.py [--n 256] [--batch 16] [--max-length 512] [--repeats 3]

Both score the same (prompt, response) texts of the bundled example (dataset/prompts.csv) with
the same model in the same process, alternating, best of `--repeats`:
- bare: the chat template, `tok(batch, padding=True, truncation=True)` in input order, one
  forward pass per batch (what a user writes with transformers alone);
- aeuf: `aeuf.backends.reward_model.run` (the `--oracle reward_model` scorer: middle cut,
  batches sorted by token length).
The model is a randomly initialised Llama sequence classifier with SmolLM2-135M's shape (30
layers, width 576, the packaged SmolLM2 tokenizer): the speed of a forward pass does not depend
on the weights, and nothing is downloaded. Prints texts/s of each and aeuf/bare.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import transformers

from aeuf.backends import hf_models, reward_model


def build(folder: Path) -> str:
    tok = hf_models.load_tokenizer("smollm2")
    cfg = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=576, intermediate_size=1536,
                                   num_hidden_layers=30, num_attention_heads=9,
                                   num_key_value_heads=3, num_labels=1,
                                   pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    transformers.LlamaForSequenceClassification(cfg).eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return str(folder)


def texts(n: int) -> tuple[list[str], list[str]]:
    df = pd.read_csv(Path(__file__).resolve().parents[1] / "dataset" / "prompts.csv")
    cols = [c for c in df.columns if c.startswith("response_") and c[9:].isdigit()]
    pairs = [(str(p), str(r)) for p, row in zip(df["instruction"], df[cols].values)
             for r in row if isinstance(r, str)]
    pairs = (pairs * (n // len(pairs) + 1))[:n]
    return [p for p, _ in pairs], [r for _, r in pairs]


def bare(loaded, prompts, responses, batch: int, max_length: int) -> np.ndarray:
    tok, model = loaded
    chats = [tok.apply_chat_template([{"role": "user", "content": p},
                                      {"role": "assistant", "content": r}], tokenize=False)
             for p, r in zip(prompts, responses)]
    out = []
    for s in range(0, len(chats), batch):
        enc = tok(chats[s:s + batch], padding=True, truncation=True, max_length=max_length,
                  add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            out.append(model(**enc).logits.float().numpy())
    return np.concatenate(out)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = build(Path(tmp) / "rm")
        prompts, responses = texts(args.n)
        reward_model.load(path)  # loading is not scoring: both paths are timed warm
        loaded = (transformers.AutoTokenizer.from_pretrained(path),
                  transformers.AutoModelForSequenceClassification.from_pretrained(path).eval())
        bare(loaded, prompts[:4], responses[:4], args.batch, args.max_length)
        t_bare, t_aeuf = [], []
        for _ in range(args.repeats):
            t_bare.append(timed(lambda: bare(loaded, prompts, responses, args.batch, args.max_length)))
            t_aeuf.append(timed(lambda: reward_model.run(prompts, responses, path,
                                                         batch_size=args.batch,
                                                         max_length=args.max_length)))
    b, a = min(t_bare), min(t_aeuf)
    print(f"texts {args.n}, batch {args.batch}, max_length {args.max_length}, "
          f"threads {torch.get_num_threads()}, device {hf_models.device()}")
    print(f"bare transformers: {args.n / b:.1f} texts/s ({b:.2f} s)")
    print(f"aeuf reward_model: {args.n / a:.1f} texts/s ({a:.2f} s)")
    print(f"aeuf / bare: {b / a:.2f}x")


if __name__ == "__main__":
    main()
