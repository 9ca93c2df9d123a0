"""The round step's records (no logic beyond their own constructors): what every helper of
aeuf.run.round imports and types against.

    Purpose    what a random key is for (the integer folded into the round's key)
    Keys       every random key of a run, derived from its seed with fold_in
    Context    what every round of a run shares
    Routing    who labels each row of a plan: the plan's extension point
    Plan       what round t chose, and why
    Calibration  the head's confidence vs the oracle on judged pairs (self-labelling)
    Checks     what the run learned about its labellers: the state's extension point
    State      what carries from one round to the next
    Verdicts   a round's answers, one per plan row, with who gave each
    Routes     a round's rows counted by labeller
    Outcome    what one round produced

Shape letters: P prompts, R responses per prompt, D feature dim, d prompt-feature dim,
b prompts in a round, k responses shown per prompt, C calibration pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any, NamedTuple

import jax
import numpy as np
from jaxtyping import Bool, Float, Int

from aeuf.acquire import Rule
from aeuf.config import RunConfig
from aeuf.head import Head
from aeuf.run.round.signals import Signals
from aeuf.types import Belief, Choice, Comparisons, Judgement, Labelled

INIT_KEY = 1_000_003  # folded into the seed's key (no round) for the head's initialisation


class Purpose(IntEnum):
    """What a round's random key is for. The values are folded into the key, so they never
    change: a resumed run (and `aeuf bench`) must draw exactly what the first run drew."""

    CHOOSE = 0  # the rule's choice of responses (sampling rules)
    FIT = 1  # the head's fit
    BELIEF = 2  # the belief's samples over the pool
    PAIRING = 3  # the pair exported from a prompt's k responses
    PROMPTS = 4  # uniform choice of the round's prompts
    TEST_BELIEF = 5  # the benchmark's belief on its test prompts (aeuf.bench)
    SWAP = 6  # unusable responses swapped out for usable ones
    REPEATS = 7  # a later pass's replacement of pairs already judged
    CHECK = 8  # the check draw of self-labelling and the cascade


class Keys(NamedTuple):
    """Every random key of a run, derived from its seed with fold_in."""

    base: Any  # a jax PRNG key

    @staticmethod
    def of(seed: int) -> Keys:
        return Keys(jax.random.key(seed))

    def round(self, t: int, purpose: Purpose):
        """Round t's key for one purpose."""
        return jax.random.fold_in(jax.random.fold_in(self.base, t), int(Purpose(purpose)))

    def init(self):
        """The head's initialisation key."""
        return jax.random.fold_in(self.base, INIT_KEY)


class Context(NamedTuple):
    """What every round of a run shares (built once; pure data and functions).

    features: f32[P, R, D] (or f16); prompt_features: f32[P, d]; rules: name -> Rule (the
    run's rule and its initial rule); graph: the prompts' kNN graph, built on first use (a
    one-element list so the context stays immutable); usable: bool[P, R] responses the
    oracle can judge (None: all; an oracle that answers from gold cannot judge a response
    without it, so such responses are never shown to it); signals: the cheap signals the
    head's agreement is compared with (aeuf.run.round.signals; None: none); where: where the
    rule chooses (aeuf.run.round.choosing.select): None in this process, else a function
    (ctx, state, name, rule, key, valid) -> Choice, or None for a round it does not take
    (the run layer injects the Ray one, aeuf.run.jobs.cluster).
    """

    cfg: RunConfig
    features: Float[np.ndarray, "P R D"]
    prompt_features: Float[np.ndarray, "P d"]
    head: Head
    rules: dict[str, Rule]
    keys: Keys
    graph: list
    usable: Bool[np.ndarray, "P R"] | None = None
    signals: Signals | None = None
    where: Callable[..., Choice | None] | None = None


class Routing(NamedTuple):
    """Who labels each row of a plan (aeuf.run.round.routes), filled by choose(); the plan's
    extension point. Every array field is per row [b]: `take` restricts it with the plan
    and the round record writes and reads it by name, so a feature that routes rows adds a
    field here and nothing else changes. head_p: the head's P(slot 0 beats slot 1) when it
    chose (None before the first fit or unless k = 2); check: drawn for the check slice
    (always sent); self_labelled: labelled by the head, never sent; threshold: the round's
    self-label confidence threshold (None: the head labels nothing)."""

    head_p: Float[np.ndarray, " b"] | None = None
    check: Bool[np.ndarray, " b"] | None = None
    self_labelled: Bool[np.ndarray, " b"] | None = None
    threshold: float | None = None


class Plan(NamedTuple):
    """What round t chose: prompts [b] and the responses shown [b, k], with why (the rule's
    score and the pair uncertainty [b]); mean and std [b, R] are the head's mean reward of
    every response of those prompts when it chose, and its std (None before the first fit);
    routing: who labels each row."""

    t: int
    rule: str
    prompts: Int[np.ndarray, " b"]
    slots: Int[np.ndarray, "b k"]
    score: Float[np.ndarray, " b"]
    uncertainty: Float[np.ndarray, " b"]
    mean: Float[np.ndarray, "b R"] | None = None
    routing: Routing = Routing()
    std: Float[np.ndarray, "b R"] | None = None


class Calibration(NamedTuple):
    """C oracle-labelled pairs: the head's confidence c [C] before the label, and whether
    the oracle strictly preferred the head's favourite [C]."""

    conf: Float[np.ndarray, " C"]
    correct: Bool[np.ndarray, " C"]

    @staticmethod
    def empty() -> Calibration:
        return Calibration(np.zeros(0, np.float64), np.zeros(0, bool))

    def add(self, conf, correct) -> Calibration:
        return Calibration(np.concatenate([self.conf, np.asarray(conf, np.float64)]),
                           np.concatenate([self.correct, np.asarray(correct, bool)]))

    @property
    def size(self) -> int:
        return int(self.conf.shape[0])


class Checks(NamedTuple):
    """What the run has learned about its labellers other than the judge: State's extension
    point, one typed field per feature that routes rows away from the judge (a feature that
    keeps evidence across rounds adds a field here and nothing else in State changes).
    calib: the head's confidence vs the oracle on judged pairs (self-labelling); noise:
    (checked, flipped) of the cheap judge against the strong one (the cascade)."""

    calib: Calibration = Calibration.empty()
    noise: tuple[int, int] = (0, 0)


class State(NamedTuple):
    """Between rounds: the comparisons so far, the head (None before the first fit), its
    belief (None before the first fit and after the last round: no round reads it), which
    prompts were labelled in the current pass, after how many rounds the head was fit, how
    many passes over the pool were completed; checks: what the run has learned about its
    other labellers (the head, a cheap judge); scored: the prompts whose rows of the belief
    were scored (int64, sorted; None: every prompt)."""

    comps: Comparisons
    head_state: Any
    belief: Belief | None
    acquired: Bool[np.ndarray, " P"]
    fitted_round: int = -1
    passes: int = 0
    checks: Checks = Checks()
    scored: Int[np.ndarray, " n"] | None = None


class Verdicts(NamedTuple):
    """A round's answers, one per plan row [b].

    judgements: the Judgement of each row; judges: who labelled it (a judge's name, or
    "head"); noisy: a cheap judge's label alone (the head learns it softened by the cheap
    judge's flip rate); checked: on a check row the cheap judge decided alone and the strong
    judge decided too, whether they agreed (None elsewhere).
    """

    judgements: list[Judgement]
    judges: list[str]
    noisy: list[bool]
    checked: list[bool | None]


class Routes(NamedTuple):
    """A round's rows by labeller: asked (all rows), head (self-labelled, never sent), cheap
    (the cheap judge alone), strong (labelled by the judge proper), checked (check slice)."""

    asked: int = 0
    head: int = 0
    cheap: int = 0
    strong: int = 0
    checked: int = 0


class Outcome(NamedTuple):
    """What one round produced: labelled prompts (ties included, `tie=True`), prompts the
    oracle gave no usable answer for, the head's pre-label agreement with the oracle (on
    the rows a judge labelled), the mean pair uncertainty, who labelled the rows, the
    self-label threshold, and baselines: each cheap signal's agreement on the same pairs
    (aeuf.run.round.signals; None without a head)."""

    labelled: list[Labelled]
    unanswered: int
    agreement: float | None
    uncertainty: float | None
    routes: Routes = Routes()
    threshold: float | None = None
    baselines: dict[str, float] | None = None
