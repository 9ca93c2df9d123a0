"""Feature parts: statistics, model identity, standardisation, and the packaged encoder."""

import numpy as np
import pytest

from aeuf import embed
from aeuf.config import FeatureConfig
from aeuf.errors import ConfigError
from aeuf.types import ResponsePool


def _pool(responses, models=None):
    responses = np.asarray(responses, dtype=object)
    P, R = responses.shape
    models = np.full((P, R), None, dtype=object) if models is None else np.asarray(models, dtype=object)
    ids = np.array([[f"p{p}:{r}" for r in range(R)] for p in range(P)], dtype=object)
    return ResponsePool(np.array([f"p{p}" for p in range(P)], dtype=object),
                        np.array([f"prompt {p}" for p in range(P)], dtype=object),
                        responses, models, ids)


def test_text_stats_reads_structure():
    s = dict(zip(embed.STAT_NAMES, embed.text_stats(
        "Q?", "# Title\n- one\n- two\n3. three\n```py\nx=1\n```\nDone.")))
    assert s["list_items"] == pytest.approx(np.log1p(3))
    assert s["code_blocks"] == 1 and s["headers"] == 1 and s["ends_cleanly"] == 1.0
    cut = dict(zip(embed.STAT_NAMES, embed.text_stats("Q?", "I'm sorry, but I cannot help with that and")))
    assert cut["refusal"] == 1.0 and cut["ends_cleanly"] == 0.0


def test_longer_response_has_larger_length_stats():
    pool = _pool([["short.", "a much longer answer with many more words in it."]])
    s = embed.response_stats(pool)
    assert s.shape == (2, len(embed.STAT_NAMES))
    assert s[1, 0] > s[0, 0] and s[1, 1] > s[0, 1]


def test_model_onehot_marks_each_model_and_zero_for_unknown():
    pool = _pool([["a", "b", "c"]], [["m1", "m2", None]])
    x = embed.model_onehot(pool)
    np.testing.assert_array_equal(x, [[1, 0], [0, 1], [0, 0]])
    with pytest.raises(ConfigError, match="model"):
        embed.model_onehot(_pool([["a", "b"]]))


def test_compose_standardises_each_block():
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 3.0, (50, 4)).astype(np.float32)
    b = np.ones((50, 2), np.float32)  # constant block -> zeros, not NaN
    x = embed.compose([a, b])
    assert x.shape == (50, 6) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, :4].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x[:, :4].std(0), 1, atol=1e-4)
    assert np.all(x[:, 4:] == 0)


def test_compose_in_threads_writes_what_one_thread_writes(monkeypatch):
    """Chunks are read and standardised by several threads; the statistics are added in
    chunk order, so the features are the same bits as one thread's."""
    monkeypatch.setattr(embed, "ROWS_PER_CHUNK", 64)
    rng = np.random.default_rng(1)
    blocks = [rng.normal(3.0, 2.0, (1000, 5)).astype(np.float32) * 1e3,
              rng.normal(size=(1000, 3)).astype(np.float16)]
    rows = np.sort(rng.choice(1000, 700, replace=False))
    got = {}
    for threads in (1, 4):
        monkeypatch.setattr(embed, "THREADS", threads)
        got[threads] = [embed.compose(blocks, rows, dtype=d, weights=[0.5, 2.0]) for d in
                        (np.float32, np.float16)] + [np.stack(embed.column_stats(blocks[0], rows))]
    for one, four in zip(got[1], got[4]):
        assert one.dtype == four.dtype and one.tobytes() == four.tobytes()
    assert np.abs(got[4][0][rows].mean(0)).max() < 1e-3  # standardised on `rows`


def test_a_chunk_that_fails_raises_in_the_caller(monkeypatch):
    monkeypatch.setattr(embed, "THREADS", 2)

    def fn(start):
        if start == 3:
            raise OSError("a bad read")
        return start

    with pytest.raises(OSError, match="bad read"):
        list(embed.in_threads(fn, range(100)))
    assert list(embed.in_threads(lambda s: 2 * s, range(0, 50, 7))) == [0, 14, 28, 42, 56, 70, 84, 98]


def test_parse_parts_rejects_unknown_names_listing_valid_ones():
    assert embed.parse_parts("minilm+stats") == ["minilm", "stats"]
    with pytest.raises(ConfigError, match="choose one of .*minilm"):
        embed.parse_parts("minilm+bogus")


def test_packaged_minilm_embeds_offline_and_separates_topics():
    part = embed.PARTS.get("minilm")
    cfg = FeatureConfig()
    v = part.encode(["How do I bake bread?", "Bread baking: knead the dough, let it rise.",
                     "The stock market fell sharply today."], cfg)
    assert v.shape == (3, 384) and v.dtype == np.float32
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert part.encoder_id(cfg) == "st:sentence-transformers/all-MiniLM-L6-v2:256"


def test_empty_responses_give_finite_features_and_do_not_end_cleanly():
    for blank in ("", "   ", "\n\n"):
        s = dict(zip(embed.STAT_NAMES, embed.text_stats("Q?", blank)))
        assert all(np.isfinite(v) for v in s.values())
        assert s["ends_cleanly"] == 0.0 and s["log_words"] == 0.0
    pool = _pool([["", "A full answer."], ["   ", "Another answer!"]])
    x = embed.compose([embed.response_stats(pool)])
    assert np.isfinite(x).all()
    v = embed.PARTS.get("minilm").encode(embed.pool_texts(pool), FeatureConfig())
    assert np.isfinite(v).all() and (np.linalg.norm(v, axis=1) > 0.5).all()
    assert not np.allclose(v[0], v[1])


def test_equal_group_scale_gives_each_part_the_same_total_weight():
    rng = np.random.default_rng(0)
    wide, narrow = rng.normal(size=(50, 40)), rng.normal(size=(50, 2)) * 7 + 3
    w = embed.GROUP_SCALES["equal"]([40, 2])
    x = embed.compose([wide, narrow], weights=w)
    var = x.var(axis=0)
    assert var[:40].sum() == pytest.approx(21.0, rel=1e-4)  # D / parts = 42 / 2 each
    assert var[40:].sum() == pytest.approx(21.0, rel=1e-4)
    np.testing.assert_allclose(embed.compose([wide, narrow], weights=embed.GROUP_SCALES["none"]([40, 2])),
                               embed.compose([wide, narrow]))
