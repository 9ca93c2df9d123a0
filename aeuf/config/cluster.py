"""Where the main command's rounds run: one process (default) or a Ray cluster (`--ray`)."""

from __future__ import annotations

from dataclasses import dataclass

from aeuf.config.fields import at_least, opt


@dataclass(frozen=True, kw_only=True)
class ClusterConfig:
    ray: str | None = opt(None, "choose each round on a Ray cluster: its ADDRESS (host:port "
                                "of `ray start --head`) or 'auto' (RAY_ADDRESS, else a local "
                                "instance). The features go to shards in the run folder, which "
                                "every node must see at the same path")
    ray_workers: int = opt(2, "--ray: scoring replicas (actors), about one per worker CPU")
    shard_prompts: int = opt(65536, "--ray: prompts per feature shard file (a worker task "
                                     "takes at most 4096 of them)")

    def __post_init__(self):
        at_least(self, 1, "ray_workers", "shard_prompts")
