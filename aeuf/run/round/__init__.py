"""The round step: one pure step that `aeuf` and `aeuf bench` both call, and its helpers.

    types      the records every helper types against: Keys (Purpose), Context, Plan (Routing),
               State, Verdicts, Routes, Outcome
    engine     the round engine: choose (rule, prompts, pairs, routes) and absorb (labels, tallies)
    choosing   the choose half's helpers: rule of a round, eligible and picked prompts, usable responses
    absorbing  the absorb half's helpers: the Labelled record of a judged prompt, agreement
    routes     who labels each pair of a round: the oracle, the head or a cheap judge
    passes     several passes over the pool when the budget is above the number of prompts
    selflabel  the head's confidence threshold from a Clopper-Pearson bound (self-labelling)
    signals    cheap signals (length, model, centrality) the head's agreement is compared with

No disk, no network, no ledger, no back-end: the loop (aeuf.run.loop) and the benchmark
(aeuf.bench) hand it what they read.
"""
