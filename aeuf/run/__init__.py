"""The run layer: the only code that drives stages against a run directory.

    engine     the pure round engine (one step that `aeuf` and `aeuf bench` both call)
    loop       `run(cfg)`: owns the run directory, drives the engine with an oracle, exports
    ledger     asking the oracle without ever paying twice
    routes     who labels each pair of a round: the oracle, the head or a cheap judge
    selflabel  the head's confidence threshold from a Clopper-Pearson bound (self-labelling)
    cascade    a cheap judge first, the strong one where it is unsure or disagrees
    costplan   --dry_run: requests, tokens, cost and batch shards before any call
    featurize  features through the run's content-hash cache
    gen_run    `aeuf generate` with a run directory
    plots      pictures of a run
"""
