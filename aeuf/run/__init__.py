"""The run layer: the only code that drives stages against a run directory.

    round/     the pure round step (one step that `aeuf` and `aeuf bench` both call)
    jobs/      the other jobs: generate, judge a file, cost plan, the cluster driver
    loop       `run(cfg)`: owns the run directory, drives the round step with an oracle, exports
    headstore  the head saved after each fit, restored on a rerun
    export     the end of a run: preferences, card, report, the RunSummary
    ledger     asking the oracle without ever paying twice
    cascade    a cheap judge first, the strong one where it is unsure or disagrees
    featurize  features through the run's content-hash cache
    records    rounds/<t>.json: what a round chose and why
    report     the run's report; plots: pictures of a run; timing, checks
"""
