"""The run layer: the only code that drives stages against a run directory.

    engine     the pure round engine (one step that `aeuf` and `aeuf bench` both call)
    loop       `run(cfg)`: owns the run directory, drives the engine with an oracle, exports
    ledger     asking the oracle without ever paying twice
    featurize  features through the run's content-hash cache
    gen_run    `aeuf generate` with a run directory
    plots      pictures of a run
"""
