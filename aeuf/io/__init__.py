"""Everything aeuf reads or writes: input tables, the pool, precomputed features, the
run directory's stores (feature cache, judgement log, config) and the exported dataset.

Only `io`, `loop` and the CLI touch the disk; every error a user can fix is an
aeuf.errors.InputError with one line naming the file, row and column.
"""

from aeuf.io.annotations import read_judge_tasks
from aeuf.io.atomic import (
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    atomic_write_text,
    json_floats,
    strict_json,
)
from aeuf.io.batch_store import BatchStore
from aeuf.io.export import remove_preferences, write_preferences
from aeuf.io.features import (
    align_features,
    read_precomputed_features,
    write_precomputed_features,
)
from aeuf.io.jsonl import JsonlLog
from aeuf.io.pool import read_pool, read_prompts
from aeuf.io.rundir import RunDir, fixed_settings, pool_digest
from aeuf.io.runlog import GenLog, IntentLog, JudgementLog, load_pool, write_pool
from aeuf.io.scratch import scratch_array
from aeuf.io.store import FeatureStore, feature_cache_dir
from aeuf.io.tables import hub_offline, read_table
from aeuf.io.tokens import TOKENS_FILE, annotator_tokens

__all__ = [
    "BatchStore", "FeatureStore", "feature_cache_dir", "GenLog", "IntentLog", "JsonlLog", "JudgementLog", "align_features", "atomic_write", "atomic_write_bytes",
    "atomic_write_json", "atomic_write_parquet", "read_judge_tasks", "atomic_write_text", "RunDir", "fixed_settings", "pool_digest",
    "load_pool", "read_pool", "read_precomputed_features", "write_precomputed_features", "read_prompts", "read_table",
    "json_floats", "strict_json", "write_pool", "write_preferences", "remove_preferences", "hub_offline",
    "TOKENS_FILE", "annotator_tokens", "scratch_array",
]
