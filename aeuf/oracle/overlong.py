"""--judge_overlong: what a response too long for the judge's context gets. Pure.

A response is cut when it does not fit its share of the judge's context
(aeuf.oracle.prompts.cut_flags): the judge would see its head and tail and not its middle, so
a 1 MB response with good text at both ends and its damning part in between would be judged
on what it was not shown. Policies (registry POLICIES):

  loss  (default) its requests are not sent; it loses to every response of its prompt that
        the judge read whole: the lowest rating (LOWEST) from a rating judge, p = 0 against
        a whole response from a pairwise judge; two cut responses are not compared.
  skip  its requests are not sent; it gets no score (left out of its prompt's judgement).
  cut   it is sent with its middle cut out and a marker that carries the request's nonce;
        the judge is told it was not shown that part and must give it no credit.

Whatever the policy, the cut is recorded: a request not sent gets a free, final answer in
the ledger (error "overlong: ...", `cut` = the response ids) so a rerun does not ask it
either, a sent one carries the same `cut`; Judgement.cut and Labelled.cut hold the slots,
and the exported rows a `cut` column. The policy is part of the key of a cut request only
(a request whose texts fit keeps its key whatever the policy).
"""

from __future__ import annotations

from typing import NamedTuple

from aeuf.registry import Registry

LOWEST = 1.0  # the lowest rating of the built-in scales
OVERLONG = "overlong:"  # error prefix of the answer of a request that was not sent


class Policy(NamedTuple):
    """send: a cut text is sent (cut in its middle); loses: a cut response not sent loses to
    the responses read whole (else it has no score)."""

    send: bool
    loses: bool


POLICIES: Registry[Policy] = Registry("--judge_overlong policy")
POLICIES.register("loss")(Policy(send=False, loses=True))
POLICIES.register("skip")(Policy(send=False, loses=False))
POLICIES.register("cut")(Policy(send=True, loses=False))


def held_back(policy: str, cut: tuple[int, ...]) -> bool:
    """True when a request with these cut slots is answered without being sent."""
    return bool(cut) and not POLICIES.get(policy).send


def reason(policy: str, ids: tuple[str, ...]) -> str:
    """The error of a request that was not sent because `ids` do not fit."""
    return (f"{OVERLONG} {', '.join(ids)} too long for the judge's context; not sent "
            f"(--judge_overlong {policy})")


def rating_of(policy: str, rating: float) -> float:
    """The rating a cut response ends with: LOWEST under loss, NaN under skip, the judge's
    own (of what it was shown) under cut."""
    p = POLICIES.get(policy)
    if p.send:
        return rating
    return LOWEST if p.loses else float("nan")


def pair_of(policy: str, cut_i: bool, cut_j: bool, p: float | None) -> float | None:
    """P(i beats j) when i and/or j are cut (p: the judge's, None when not asked or missing):
    under loss a whole response beats a cut one; otherwise no comparison unless the cut was
    sent."""
    pol = POLICIES.get(policy)
    if pol.send or not (cut_i or cut_j):
        return p
    if pol.loses and cut_i != cut_j:
        return 0.0 if cut_i else 1.0
    return None
