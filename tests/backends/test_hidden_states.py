"""Frozen-LLM features (aeuf.backends.hidden_states) with the packaged SmolLM2 on the CPU."""

import numpy as np
import torch

from aeuf.backends import hf_models, hidden_states

pytest_plugins = ["genmodels"]

TEXTS = [
    "Hi.",
    "What is the capital of France? The capital of France is Paris.",
    "Write a haiku about the sea.\n\nWaves fold into foam / salt wind carries gull voices / the tide keeps its time",
    "2 + 2 = 4",
    "Explain recursion. Recursion is when a function calls itself on a smaller input until it "
    "reaches a base case, and then the results are combined on the way back up the stack.",
]


def _direct_last(folder: str, ids: list[int]) -> np.ndarray:
    """The decoder's final hidden state at the last token of one unpadded sequence."""
    _, lm = hf_models.load(folder)
    with torch.inference_mode():
        out = lm.base_model(input_ids=torch.tensor([ids])).last_hidden_state
    return out[0, -1].float().numpy()


def test_shape_dtype_and_distinct_rows(smol_dir):
    x = hidden_states.encode(TEXTS, smol_dir, batch_size=2, max_length=128)
    _, lm = hf_models.load(smol_dir)
    assert x.shape == (len(TEXTS), lm.config.hidden_size) and x.dtype == np.float32
    assert np.isfinite(x).all()
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    assert (d[~np.eye(len(TEXTS), dtype=bool)] > 1e-3).all()


def test_deterministic_and_independent_of_batching(smol_dir):
    a = hidden_states.encode(TEXTS, smol_dir, batch_size=5, max_length=128)
    b = hidden_states.encode(TEXTS, smol_dir, batch_size=5, max_length=128)
    c = hidden_states.encode(TEXTS[::-1], smol_dir, batch_size=2, max_length=128)[::-1]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4)


def test_padded_batch_matches_each_text_run_alone_at_its_last_token(smol_dir):
    """Right padding: the feature must come from the last real token, not a pad position."""
    tok = hf_models.load_tokenizer(smol_dir)
    batched = hidden_states.encode(TEXTS, smol_dir, batch_size=len(TEXTS), max_length=128)
    for text, row in zip(TEXTS, batched):
        alone = _direct_last(smol_dir, tok(text)["input_ids"])
        np.testing.assert_allclose(row, alone, rtol=1e-4, atol=1e-4)
    pad_row = _direct_last(smol_dir, tok(TEXTS[0])["input_ids"] + [tok.pad_token_id] * 5)
    assert not np.allclose(batched[0], pad_row, atol=1e-3)  # a pad position would differ


def test_truncation_keeps_the_end_of_long_texts(smol_dir):
    tok = hf_models.load_tokenizer(smol_dir)
    long = TEXTS[4] * 4
    x = hidden_states.encode([long], smol_dir, max_length=16)
    tail = tok(long)["input_ids"][-16:]
    np.testing.assert_allclose(x[0], _direct_last(smol_dir, tail), rtol=1e-4, atol=1e-4)


def test_last_index_any_padding_side():
    mask = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 1, 0]])
    assert hidden_states.last_index(mask).tolist() == [1, 3, 3, 2]


def test_pairs_use_the_chat_template(smol_dir):
    [text] = hidden_states.format_pairs(["Name a colour."], ["Blue."], smol_dir)
    assert text.index("Name a colour.") < text.index("Blue.")
    assert "<|im_start|>assistant" in text  # SmolLM2's template, not plain concatenation
    x = hidden_states.encode_pairs(["Name a colour."], ["Blue."], smol_dir)
    np.testing.assert_array_equal(x, hidden_states.encode([text], smol_dir))


def test_engine_prefixes():
    assert hidden_states.split_engine("vllm:org/m") == ("vllm", "org/m")
    assert hidden_states.split_engine("ray:smollm2") == ("ray", "smollm2")
    assert hidden_states.split_engine("C:/models/m") == ("transformers", "C:/models/m")
    assert hidden_states.encode([], "smollm2").shape == (0, 0)


def test_feature_cache_hits_through_the_embed_stage(smol_dir, tmp_path):
    from aeuf import embed
    from aeuf.config import FeatureConfig
    from aeuf.run import featurize

    cfg = FeatureConfig(features="llm", llm_encoder=smol_dir, max_length=64, batch_size=4)
    part = embed.PARTS.get("llm")
    first, n1 = featurize.cached_encode(TEXTS, part, cfg, tmp_path, progress=False)
    again, n2 = featurize.cached_encode(TEXTS, part, cfg, tmp_path, progress=False)
    more, n3 = featurize.cached_encode(TEXTS + ["A new text."], part, cfg, tmp_path, progress=False)
    assert (n1, n2, n3) == (len(TEXTS), 0, 1)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(more[: len(TEXTS)], first)
    direct = hidden_states.encode(TEXTS, smol_dir, batch_size=4, max_length=64)
    np.testing.assert_allclose(first, direct, rtol=1e-4, atol=1e-4)
