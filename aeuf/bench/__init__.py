"""The label-efficiency benchmark: simulated active learning on a pool with gold utilities.

data (pool_from_long, read_bench_pool) -> runner.run_benchmark (simulate.simulate per rule,
head, seed and label mode; ceilings; no-learning baselines) -> report (summary.json,
report.md, PNG curves). `aeuf bench POOL` (aeuf.commands.bench) wires them together.
"""
