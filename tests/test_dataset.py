"""Export rows: TRL columns, provenance, k-way rankings, all pairs, pairwise Borda scores."""

import numpy as np

from aeuf import dataset, types
from aeuf.types import Judgement, JudgeTask, ResponsePool


def _pool():
    responses = np.array([["r00", "r01", "r02", "r03"], ["r10", "r11", "r12", "r13"]], dtype=object)
    models = np.array([["a", "b", "c", "d"]] * 2, dtype=object)
    ids = np.array([[f"p{p}:{r}" for r in range(4)] for p in range(2)], dtype=object)
    return ResponsePool(np.array(["p0", "p1"], dtype=object), np.array(["q0", "q1"], dtype=object),
                        responses, models, ids)


def _lab(prompt, slots, scores, chosen, rejected, rnd=0):
    return types.Labelled(prompt, tuple(slots), np.asarray(scores, float), chosen, rejected,
                            "dts", rnd, 0.25, 1.5, "replay")


def test_pair_row_has_trl_columns_and_provenance():
    df = dataset.build_rows(_pool(), [_lab(1, [3, 0], [2.0, 5.0], 1, 0)])
    row = df.iloc[0]
    assert list(df.columns[:3]) == ["prompt", "chosen", "rejected"]
    assert (row.prompt, row.chosen, row.rejected) == ("q1", "r10", "r13")
    assert (row.chosen_id, row.rejected_id, row.chosen_model, row.rejected_model) == ("p1:0", "p1:3", "a", "d")
    assert (row.chosen_score, row.rejected_score, row.rule, row.uncertainty) == (5.0, 2.0, "dts", 0.25)
    assert "pref_1" not in df.columns


def test_k_way_ranking_writes_pref_columns_best_first():
    df = dataset.build_rows(_pool(), [_lab(0, [0, 1, 2], [3.0, 1.0, 4.0], 2, 1)])
    row = df.iloc[0]
    assert (row.pref_1, row.pref_2, row.pref_3) == ("r02", "r00", "r01")
    assert (row.chosen, row.rejected) == ("r02", "r01")


def test_all_pairs_emits_every_strictly_ordered_pair_only():
    df = dataset.build_rows(_pool(), [_lab(0, [0, 1, 2], [3.0, 3.0, 4.0], 2, 0)], all_pairs=True)
    pairs = set(zip(df.chosen, df.rejected))
    assert pairs == {("r02", "r00"), ("r02", "r01")}  # the tie r00 = r01 is not a preference


def test_rows_are_ordered_by_round_then_prompt():
    labs = [_lab(1, [0, 1], [1, 0], 0, 1, rnd=0), _lab(0, [0, 1], [1, 0], 0, 1, rnd=1),
            _lab(0, [2, 3], [0, 1], 1, 0, rnd=0)]
    df = dataset.build_rows(_pool(), labs)
    assert list(zip(df["round"], df.prompt_id)) == [(0, "p0"), (0, "p1"), (1, "p0")]


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
