"""The benchmark: simulated labelling on a pool with gold utilities, run by the main command's
own round engine (aeuf.run.round.engine) with the replay oracle.

data (read_bench_pool, select_responses) -> runner.run_benchmark (simulate.simulate per rule,
head, seed and label mode; `budget` regime: learning curves, no-learning baselines and
ceilings; `once` regime: quality of the exported pairs (quality), no-call baselines
(heuristics) and a reward model trained on them) -> summary (flat summary.json rows) ->
report (report.md) and plots (PNGs). `aeuf bench POOL` (aeuf.commands.bench) wires them.
"""
