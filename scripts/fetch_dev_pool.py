"""Rebuild the benchmark's dev pool (805 AlpacaEval instructions x 16 models, each response
scored by AlpacaEval 2's weighted GPT-4-turbo judge) from AlpacaEval's public results.

    python scripts/fetch_dev_pool.py [--out bench_out/alpacaeval_dev.parquet]
        [--source https://raw.githubusercontent.com/tatsu-lab/alpaca_eval/main | DIR]
        [--models m1,m2,...]

--source is the root of the alpaca_eval repository: a URL (downloaded, about 2 MB per model)
or a local folder holding the same results/<model>/... files (a clone, or a copy). The rows
are built by aeuf.bench.devpool.build_rows; the parquet is written to a temporary file and
renamed, so a failed run leaves nothing half-written. Then point the scripts at it:
`export AEUF_DEV_POOL=bench_out/alpacaeval_dev.parquet` (their default path). The data is
CC BY-NC 4.0 (AlpacaEval): keep it out of the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from pathlib import Path

from aeuf.bench.devpool import (
    DEFAULT_PATH,
    DEV_MODELS,
    annotations_file,
    build_rows,
    outputs_file,
)
from aeuf.errors import InputError

SOURCE = "https://raw.githubusercontent.com/tatsu-lab/alpaca_eval/main"


def read_json(source: str, relpath: str):
    """The JSON at source/relpath: an http(s) URL or a local folder."""
    where = f"{source.rstrip('/')}/{relpath}"
    try:
        if source.startswith(("http://", "https://")):
            with urllib.request.urlopen(where, timeout=60) as r:  # noqa: S310 (fixed host)
                return json.loads(r.read())
        return json.loads(Path(where).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{where}: cannot read it ({e}); check --source and the model "
                         "name") from None


def fetch(source: str, models) -> dict:
    """{model: (outputs, annotations)} read from source."""
    return {m: (read_json(source, outputs_file(m)), read_json(source, annotations_file(m)))
            for m in models}


def write_parquet(df, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(DEFAULT_PATH))
    ap.add_argument("--source", default=SOURCE)
    ap.add_argument("--models", default=",".join(DEV_MODELS))
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    try:
        df = build_rows(fetch(args.source, models))
    except InputError as e:
        print(f"fetch_dev_pool: error: {e}", file=sys.stderr)
        return 1
    write_parquet(df, Path(args.out))
    print(f"{args.out}: {df['prompt_id'].nunique()} prompts x {df['model'].nunique()} models, "
          f"{len(df)} responses with a score")
    return 0


if __name__ == "__main__":
    sys.exit(main())
