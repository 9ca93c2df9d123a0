"""The run layer's other jobs, each with its own command.

    gen_run    `aeuf generate` with a run directory
    judging    `aeuf judge`: judge a file of pairs through the ledger
    costplan   --dry_run: requests, tokens, cost and batch shards before any call
    sharded    the cluster driver: choose pairs over feature shards
"""
