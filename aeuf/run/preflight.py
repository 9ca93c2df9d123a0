"""What would fail late is refused first: before any file is read, written or embedded,
`preflight(cfg)` checks what the run needs from this machine (the local judge's
llama-cpp-python and model, the hub for --push_to_hub). One line each, exit 1."""

from __future__ import annotations

from aeuf import io
from aeuf.config import RunConfig
from aeuf.errors import ConfigError
from aeuf.oracle import ORACLES, auto_name


def preflight(cfg: RunConfig) -> None:
    """ConfigError (or MissingExtra) for a run that cannot finish on this machine."""
    kind = ORACLES.get(auto_name(cfg.oracle, has_gold=False))  # auto never needs a machine part
    if kind.needs is not None:
        kind.needs(cfg.oracle)
    repo = cfg.export.push_to_hub
    if repo and io.hub_offline():
        raise ConfigError(f"--push_to_hub {repo}: the hub is off (HF_HUB_OFFLINE=1); drop "
                          f"--push_to_hub (push the saved dataset later) or go online")
    if repo and not cfg.spend.dry_run:
        from huggingface_hub import get_token

        if not get_token():
            raise ConfigError(f"--push_to_hub {repo}: no hub token; log in first "
                              f"(`huggingface-cli login`, or set HF_TOKEN)")
