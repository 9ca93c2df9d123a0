"""Records and arrays that pass between aeuf's stages. No logic lives here.

Shape letters used across the package (jaxtyping dimension names):
    P  prompts            R  responses per prompt     N = P*R responses
    D  feature dimension  K  ensemble members / posterior samples
    M  comparisons        k  responses shown to the oracle per prompt
    H  last-layer (embedding) dimension of a head
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
from jaxtyping import Float, Int, Shaped


@dataclass(frozen=True)
class ResponsePool:
    """P prompts with exactly R candidate responses each (row-major [P, R] layout).

    prompt_ids:   [P]    str, stable and unique
    prompts:      [P]    str (for multi-turn input: the last user turn)
    responses:    [P, R] object (str; "" is a legitimate, empty response)
    models:       [P, R] object (str or None): the model that wrote each response, if known
    response_ids: [P, R] object (str): stable id, f"{prompt_id}:{column or index}"
    gold:         [P, R] float64 or None: gold utility per response (NaN where missing);
                  chosen/rejected inputs are stored as gold [1, 0]
    gold_kind:    "score" (per-response utility), "pair" (chosen/rejected label) or None
    source:       where the pool was read from (for messages)
    messages:     [P] object or None: each prompt's conversation before the answer, a list of
                  {"role", "content"} dicts, when the input was multi-turn
    skipped:      prompt ids dropped while reading (fewer responses than R), for the summary
    """

    prompt_ids: Shaped[np.ndarray, " P"]
    prompts: Shaped[np.ndarray, " P"]
    responses: Shaped[np.ndarray, "P R"]
    models: Shaped[np.ndarray, "P R"]
    response_ids: Shaped[np.ndarray, "P R"]
    gold: Float[np.ndarray, "P R"] | None = None
    gold_kind: str | None = None
    source: str = ""
    messages: Shaped[np.ndarray, " P"] | None = None
    skipped: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """(P, R)."""
        return self.responses.shape

    def take(self, idx: Int[np.ndarray, " Q"]) -> ResponsePool:
        """The pool restricted to prompts `idx` (in that order): [Q, R]."""
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return replace(self, prompt_ids=self.prompt_ids[idx], prompts=self.prompts[idx],
                       responses=self.responses[idx], models=self.models[idx],
                       response_ids=self.response_ids[idx], gold=pick(self.gold),
                       messages=pick(self.messages))


class Comparisons(NamedTuple):
    """M labelled comparisons between two responses of the same prompt.

    prompt: [M] int32  prompt index into the pool
    a, b:   [M] int32  response indices within that prompt (a != b)
    p:      [M] float32  P(a beats b) in [0, 1]; 1 = a wins, 0.5 = tie, soft labels allowed
    """

    prompt: Int[np.ndarray, " M"]
    a: Int[np.ndarray, " M"]
    b: Int[np.ndarray, " M"]
    p: Float[np.ndarray, " M"]

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
                         zero on the diagonal; None lets a rule compute it from the samples
    embed:    [P, R, H]  or None: last-layer features the head's reward is (close to) linear
                         in (bll: its (projected) input features; ensemble: the members' mean
                         last hidden layer), for design-based rules such as D-optimal
    precision: [H, H]    or None: the head's posterior precision in that space,
                         lambda*I + sum over labelled pairs of w z z^T (z = embed_a - embed_b)
    """

    mean: Float[np.ndarray, "P R"]
    std: Float[np.ndarray, "P R"]
    samples: Float[np.ndarray, "K P R"]
    pair_var: Float[np.ndarray, "P R R"] | None
    embed: Float[np.ndarray, "P R H"] | None = None
    precision: Float[np.ndarray, "H H"] | None = None


class Choice(NamedTuple):
    """What an acquisition rule picked for each of P prompts.

    idx:   [P, k] int32  responses to show the oracle (distinct within a row)
    score: [P]    float32 acquisition score of that choice (higher = more informative);
                  used to rank prompts when the round budget is below P
    """

    idx: Int[np.ndarray, "P k"]
    score: Float[np.ndarray, " P"]


@dataclass(frozen=True)
class JudgeTask:
    """One prompt and the k responses the oracle must judge."""

    prompt_id: str
    prompt: str
    response_ids: tuple[str, ...]
    responses: tuple[str, ...]
    gold: tuple[float, ...] | None = None  # replay oracle only
    # a multi-turn prompt's conversation before the answer, (role, text) per turn (the last
    # user turn is `prompt`); None for a one-turn prompt. Shown by the web oracle.
    turns: tuple[tuple[str, str], ...] | None = None


def turns_of(messages: Any) -> tuple[tuple[str, str], ...] | None:
    """A pool's conversation ({"role", "content"} dicts) as JudgeTask.turns: None unless it
    has two or more turns (one user turn is the prompt itself)."""
    if not isinstance(messages, (list, tuple, np.ndarray)) or len(messages) < 2:
        return None
    return tuple((str(m.get("role", "")), "" if m.get("content") is None else str(m["content"]))
                 for m in messages if isinstance(m, dict)) or None


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
    cut: tuple[str, ...] = ()  # ids of the responses the judge could not be shown whole


class Intent(NamedTuple):
    """A paid request about to be sent, as written (fsync'd) to intents.jsonl before it is
    sent; the answer that follows it in judgements.jsonl closes it.

    purpose: what asks (the oracle's name: "judge", "cheap_judge", ...); time: UTC, ISO 8601
    after:   the size of judgements.jsonl when it was written: an answer to `key` that starts
             at or after this offset closes it; without one the request may have been paid
             and its answer lost (a kill, a crash, a second Ctrl-C)
    estimate: USD reserved for it (the oracle's upper bound; 0.0 when unknown)
    """

    key: str
    prompt_id: str
    purpose: str
    time: str
    after: int
    estimate: float = 0.0


class Judgement(NamedTuple):
    """A task's answers combined: ratings per response and comparisons within the task.

    ratings: [k] float64, NaN where the oracle gave none (absolute judges; NaN for pairwise)
    pairs:   list of (i, j, p) with i, j slots of the task and p = P(i beats j)
    cut:     slots too long for the judge's context (aeuf.oracle.overlong)
    annotators: the people whose answers made it (human and web oracles; () otherwise)
    """

    task: JudgeTask
    ratings: Float[np.ndarray, " k"]
    pairs: list[tuple[int, int, float]]
    cut: tuple[int, ...] = ()  # slots the judge could not read whole (--judge_overlong)
    annotators: tuple[str, ...] = ()


SELF_LABEL = "head"  # Labelled.judge of a pair the reward head labelled itself


class Labelled(NamedTuple):
    """One judged prompt: where it came from and what the oracle said.

    prompt:  prompt index in the pool
    slots:   [k] response indices shown to the oracle
    scores:  [k] oracle scores (ratings, or Borda counts for pairwise judges; NaN missing)
    chosen, rejected: positions in `slots` of the exported pair
    rule, round, uncertainty, acquisition_score: why it was chosen
    judge:   who labelled it (the oracle's name, or "head" for a self-labelled pair)
    tie:     the judged responses tied (or too few had a score): exported only on request
    confidence: the labeller's confidence in the chosen > rejected order (NaN if none)
    cut:     positions in `slots` the judge could not read whole (aeuf.oracle.overlong)
    annotators: the people whose answers labelled it (human and web oracles; () otherwise)
    """

    prompt: int
    slots: tuple[int, ...]
    scores: np.ndarray
    chosen: int
    rejected: int
    rule: str
    round: int
    uncertainty: float
    acquisition_score: float
    judge: str
    tie: bool = False
    confidence: float = float("nan")
    cut: tuple[int, ...] = ()
    annotators: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenRequest:
    """One response to generate.

    key:    content hash of everything below except `prompt_id` order; never reused
    slot:   position of this response among the prompt's R responses (0 .. R-1)
    model:  the ModelSpec name (recorded);  path: what the back-end loads
    seed:   per-request seed (vLLM/OpenAI honour it per request; transformers seeds each batch)
    """

    key: str
    prompt_id: str
    prompt: str
    slot: int
    model: str
    path: str
    temperature: float
    top_p: float
    max_tokens: int
    seed: int

    def sampling(self) -> dict:
        """The sampling parameters as a JSON-ready dict (what each response records)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }


class Generation(NamedTuple):
    """A back-end's answer to one GenRequest.

    text: the response; prompt_tokens / completion_tokens: token counts (0 if unknown);
    finish_reason: "stop", "length" or the back-end's own word.
    error: why no text came back (the request stays missing and a rerun asks again), or None
    """

    key: str
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    error: str | None = None
