"""Export rows: TRL columns, provenance, margin, ties, k-way rankings, all pairs, the
conversational and KTO layouts, pairwise Borda scores."""

import dataclasses

import numpy as np
import pytest

from aeuf import dataset, types
from aeuf.config import ExportConfig
from aeuf.errors import ConfigError
from aeuf.types import Judgement, JudgeTask, ResponsePool

STANDARD = ExportConfig()


def _pool(messages=None):
    responses = np.array([["r00", "r01", "r02", "r03"], ["r10", "r11", "r12", "r13"]], dtype=object)
    models = np.array([["a", "b", "c", "d"]] * 2, dtype=object)
    ids = np.array([[f"p{p}:{r}" for r in range(4)] for p in range(2)], dtype=object)
    return ResponsePool(np.array(["p0", "p1"], dtype=object), np.array(["q0", "q1"], dtype=object),
                        responses, models, ids, messages=messages)


def _lab(prompt, slots, scores, chosen, rejected, rnd=0, tie=False, judge="replay"):
    return types.Labelled(prompt, tuple(slots), np.asarray(scores, float), chosen, rejected,
                          "dts", rnd, 0.25, 1.5, judge, tie=tie, confidence=0.75)


def _cfg(**kw):
    return dataclasses.replace(STANDARD, **kw)


def test_pair_row_has_trl_columns_provenance_and_margin():
    df = dataset.build_rows(_pool(), [_lab(1, [3, 0], [2.0, 5.0], 1, 0)], STANDARD)
    row = df.iloc[0]
    assert list(df.columns[:4]) == ["prompt", "chosen", "rejected", "margin"]
    assert (row.prompt, row.chosen, row.rejected) == ("q1", "r10", "r13")
    assert (row.chosen_id, row.rejected_id, row.chosen_model, row.rejected_model) == ("p1:0", "p1:3", "a", "d")
    assert (row.chosen_score, row.rejected_score, row.rule, row.uncertainty) == (5.0, 2.0, "dts", 0.25)
    assert (row.margin, row.tie, row.confidence, row.judge) == (3.0, False, 0.75, "replay")
    assert "pref_1" not in df.columns


def test_k_way_ranking_writes_pref_columns_best_first():
    df = dataset.build_rows(_pool(), [_lab(0, [0, 1, 2], [3.0, 1.0, 4.0], 2, 1)], STANDARD)
    row = df.iloc[0]
    assert (row.pref_1, row.pref_2, row.pref_3) == ("r02", "r00", "r01")
    assert (row.chosen, row.rejected, row.margin) == ("r02", "r01", 3.0)


def test_all_pairs_emits_every_strictly_ordered_pair_only():
    df = dataset.build_rows(_pool(), [_lab(0, [0, 1, 2], [3.0, 3.0, 4.0], 2, 0)], _cfg(all_pairs=True))
    assert set(zip(df.chosen, df.rejected, df.margin)) == {("r02", "r00", 1.0), ("r02", "r01", 1.0)}


def test_rows_are_ordered_by_round_then_prompt():
    labs = [_lab(1, [0, 1], [1, 0], 0, 1, rnd=0), _lab(0, [0, 1], [1, 0], 0, 1, rnd=1),
            _lab(0, [2, 3], [0, 1], 1, 0, rnd=0)]
    df = dataset.build_rows(_pool(), labs, STANDARD)
    assert list(zip(df["round"], df.prompt_id)) == [(0, "p0"), (0, "p1"), (1, "p0")]


def _tied():
    return [_lab(0, [0, 1], [4.0, 2.0], 0, 1), _lab(1, [2, 3], [3.0, 3.0], 0, 1, tie=True),
            _lab(0, [2, 3], [np.nan, np.nan], 0, 0, rnd=1, tie=True)]


def test_ties_are_dropped_by_default_and_counted():
    df = dataset.build_rows(_pool(), _tied(), STANDARD)
    assert df.chosen.tolist() == ["r00"] and not df.tie.any()
    assert {k: df.attrs[k] for k in ("rows", "prompts", "ties", "ties_kept")} == \
        {"rows": 1, "prompts": 1, "ties": 2, "ties_kept": 0}


def test_keep_ties_writes_them_with_tie_true_and_margin_zero():
    df = dataset.build_rows(_pool(), _tied(), _cfg(keep_ties=True))
    assert df.tie.tolist() == [False, True, True]
    assert df.margin.tolist() == [2.0, 0.0, 0.0]
    # a tie with nothing to pair (chosen == rejected) is written with its first two responses
    assert list(zip(df.chosen, df.rejected)) == [("r00", "r01"), ("r12", "r13"), ("r02", "r03")]
    assert (df.attrs["ties"], df.attrs["ties_kept"], df.attrs["rows"]) == (2, 2, 3)


def test_conversational_keeps_the_input_conversation():
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
             {"role": "assistant", "content": "hello"}, {"role": "user", "content": "q0", "x": 1}]
    messages = np.array([turns, None], dtype=object)
    labs = [_lab(0, [0, 1, 2], [1.0, 3.0, 2.0], 1, 0), _lab(1, [2, 3], [1.0, 3.0], 1, 0)]
    df = dataset.build_rows(_pool(messages), labs, _cfg(format="conversational"))
    first, second = df.to_dict("records")
    assert first["prompt"] == [{k: m[k] for k in ("role", "content")} for m in turns]
    assert first["chosen"] == [{"role": "assistant", "content": "r01"}]
    assert first["rejected"] == [{"role": "assistant", "content": "r00"}]
    assert first["pref_2"] == [{"role": "assistant", "content": "r02"}]
    assert second["prompt"] == [{"role": "user", "content": "q1"}]  # single-turn: one user turn
    assert (first["margin"], first["chosen_id"]) == (2.0, "p0:1")


def test_kto_labels_against_the_prompts_median():
    labs = [_lab(0, [0, 1], [2.0, 5.0], 1, 0), _lab(1, [0, 1, 2], [1.0, 3.0, 5.0], 2, 0),
            _lab(1, [3, 2], [3.0, 3.0], 0, 1, rnd=1, tie=True)]
    df = dataset.build_rows(_pool(), labs, _cfg(format="kto"))
    got = sorted(zip(df.prompt, df.completion, df.label))
    # two responses: chosen True, rejected False; three: the median one gets no row; tie: none
    assert got == [("q0", "r00", False), ("q0", "r01", True), ("q1", "r10", False), ("q1", "r12", True)]
    assert {"prompt", "completion", "label", "completion_model", "score"} <= set(df.columns)
    assert df.label.dtype == bool
    assert (df.attrs["desirable"], df.attrs["undesirable"], df.attrs["ties"]) == (2, 2, 1)


def test_kto_cannot_keep_ties_and_unknown_formats_are_config_errors():
    with pytest.raises(ConfigError, match="--keep_ties"):
        dataset.build_rows(_pool(), _tied(), _cfg(format="kto", keep_ties=True))
    with pytest.raises(ConfigError, match="standard"):
        dataset.build_rows(_pool(), _tied(), _cfg(format="dpo"))


def test_pairwise_judgement_scores_are_borda_counts():
    task = JudgeTask("p0", "q0", ("a", "b", "c"), ("x", "y", "z"))
    j = Judgement(task, np.full(3, np.nan), [(0, 1, 1.0), (1, 2, 0.5), (0, 2, 0.0)])
    np.testing.assert_allclose(dataset.judgement_scores(j), [1.0, 0.5, 1.5])
    rated = Judgement(task, np.array([4.0, np.nan, 2.0]), [])
    np.testing.assert_allclose(dataset.judgement_scores(rated), [4.0, np.nan, 2.0])


def test_judgement_comparisons_map_slots_to_pool_indices():
    task = JudgeTask("p0", "q0", ("a", "b"), ("x", "y"))
    j = Judgement(task, np.array([1.0, 2.0]), [(0, 1, 0.2)])
    assert dataset.judgement_comparisons(j, 5, (3, 1)) == [(5, 3, 1, 0.2)]


def test_a_response_the_judge_could_not_read_whole_is_marked_in_its_rows():
    """Issue 24.2: Judgement.cut -> Labelled.cut -> the `cut` column and count; kto marks
    the completion."""
    from aeuf.run.round.absorbing import labelled

    task = JudgeTask("p0", "q0", ("p0:0", "p0:1"), ("r00", "r01"))
    judged = Judgement(task, np.array([4.0, 1.0]), [(0, 1, 1.0)], cut=(1,))
    from types import SimpleNamespace

    plan = SimpleNamespace(rule="dts", t=0, uncertainty=np.zeros(1), score=np.zeros(1))
    lab = labelled(plan, 0, 0, (0, 1), judged, "extremes", 0, "judge")
    assert lab.cut == (1,)
    df = dataset.build_rows(_pool(), [lab, _lab(1, [0, 1], [5.0, 2.0], 0, 1)], STANDARD)
    assert df["cut"].tolist() == ["rejected", ""] and df.attrs["cut"] == 1
    kto = dataset.build_rows(_pool(), [lab], _cfg(format="kto"))
    assert kto.set_index("completion_id")["cut"].to_dict() == {"p0:0": False, "p0:1": True}


def test_a_persons_label_names_its_annotator_and_other_rows_are_null():
    """The `annotator` column: who answered (comma-separated when several voted); null on a
    row no person labelled; absent when no person labelled any row."""
    people = _lab(0, [0, 1], [1.0, 0.0], 0, 1, judge="web")._replace(
        annotators=("annotator1", "annotator2"))
    head = _lab(1, [0, 1], [1.0, 0.0], 0, 1, rnd=1, judge="head")
    for fmt in ("standard", "kto"):
        df = dataset.build_rows(_pool(), [people, head], _cfg(format=fmt))
        assert list(df["annotator"]) == ["annotator1,annotator2"] * (len(df) // 2) + [None] * (len(df) // 2)
    assert "annotator" not in dataset.build_rows(_pool(), [head], STANDARD).columns
