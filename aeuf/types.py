"""Records and arrays that pass between aeuf's stages. No logic lives here.

Shape letters used across the package:
    P  prompts            R  responses per prompt     N = P*R responses
    D  feature dimension  K  ensemble members / posterior samples
    M  comparisons        k  responses shown to the oracle per prompt
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np


@dataclass(frozen=True)
class ResponsePool:
    """P prompts with exactly R candidate responses each (row-major [P, R] layout).

    prompt_ids:   [P]    str, stable and unique
    prompts:      [P]    str
    responses:    [P, R] object (str)
    models:       [P, R] object (str or None): the model that wrote each response, if known
    response_ids: [P, R] object (str): stable id, f"{prompt_id}:{column or index}"
    gold:         [P, R] float64 or None: gold utility per response (NaN where missing);
                  chosen/rejected inputs are stored as gold [1, 0]
    gold_kind:    "score" (per-response utility), "pair" (chosen/rejected label) or None
    source:       where the pool was read from (for messages)
    """

    prompt_ids: np.ndarray
    prompts: np.ndarray
    responses: np.ndarray
    models: np.ndarray
    response_ids: np.ndarray
    gold: np.ndarray | None = None
    gold_kind: str | None = None
    source: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        """(P, R)."""
        return self.responses.shape


class Comparisons(NamedTuple):
    """M labelled comparisons between two responses of the same prompt.

    prompt: [M] int32  prompt index into the pool
    a, b:   [M] int32  response indices within that prompt (a != b)
    p:      [M] float32  P(a beats b) in [0, 1]; 1 = a wins, 0.5 = tie, soft labels allowed
    """

    prompt: np.ndarray
    a: np.ndarray
    b: np.ndarray
    p: np.ndarray

    @staticmethod
    def empty() -> Comparisons:
        z = np.zeros(0, np.int32)
        return Comparisons(z, z, z, np.zeros(0, np.float32))

    @property
    def size(self) -> int:
        """The number of comparisons M (not __len__: a NamedTuple's length is its 4 fields)."""
        return int(self.prompt.shape[0])


class Belief(NamedTuple):
    """A head's belief about the rewards of every response in the pool.

    mean:     [P, R]     posterior mean reward
    std:      [P, R]     marginal epistemic standard deviation of each reward
    samples:  [K, P, R]  joint posterior samples (ensemble members or posterior draws)
    pair_var: [P, R, R]  Var[r_i - r_j] (exact for bll, from samples for the ensemble);
                         zero on the diagonal
    """

    mean: Any
    std: Any
    samples: Any
    pair_var: Any


class Choice(NamedTuple):
    """What an acquisition rule picked for each of P prompts.

    idx:   [P, k] int32  responses to show the oracle (distinct within a row)
    score: [P]    float32 acquisition score of that choice (higher = more informative);
                  used to rank prompts when the round budget is below P
    """

    idx: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class JudgeTask:
    """One prompt and the k responses the oracle must judge."""

    prompt_id: str
    prompt: str
    response_ids: tuple[str, ...]
    responses: tuple[str, ...]
    gold: tuple[float, ...] | None = None  # replay oracle only


@dataclass(frozen=True)
class JudgeRequest:
    """One paid call. `key` identifies it forever: the loop never sends a key twice.

    key:     hash of (judge id, template hash, prompt id, response ids, order)
    task:    the task it belongs to
    slots:   which responses of the task it looks at, in the order shown ((i,) or (i, j))
    payload: what the back-end needs (chat messages, sampling params); never secrets
    """

    key: str
    task: JudgeTask
    slots: tuple[int, ...]
    payload: dict = field(default_factory=dict, hash=False, compare=False)


class JudgeAnswer(NamedTuple):
    """The oracle's answer to one JudgeRequest, as written to judgements.jsonl.

    value: rating (absolute judges) or P(first slot beats second) (pairwise); None = missing
    """

    key: str
    prompt_id: str
    response_ids: tuple[str, ...]
    value: float | None
    raw: str
    judge: str
    cost: float = 0.0
    tokens: int = 0
    error: str | None = None


class Judgement(NamedTuple):
    """A task's answers combined: ratings per response and comparisons within the task.

    ratings: [k] float64, NaN where the oracle gave none (absolute judges; NaN for pairwise)
    pairs:   list of (i, j, p) with i, j slots of the task and p = P(i beats j)
    """

    task: JudgeTask
    ratings: np.ndarray
    pairs: list[tuple[int, int, float]]
