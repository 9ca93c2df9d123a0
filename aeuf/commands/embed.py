"""`aeuf embed POOL`: compute (and cache) the composed features of a pool.

Writes <output_dir>/features.npy (f32[N, D], row-major over [P, R]) and
<output_dir>/features.ids.txt (one response id per line), which `--precomputed` reads back.
"""

from __future__ import annotations

import argparse
import sys

from aeuf.commands.flags import add_flags
from aeuf.commands.run import FLAGS, config_from_args
from aeuf.config import RunConfig

EMBED_FLAGS = [f for f in FLAGS if f.path[0] in ("input", "features") or f.name == "output_dir"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", help="pool file (same formats as the main command)")
    add_flags(parser, EMBED_FLAGS, RunConfig())
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from aeuf.run.jobs.embedding import embed_pool
    from aeuf.run.loop import output_dir

    cfg = config_from_args(args)
    out = output_dir(cfg)
    s = embed_pool(cfg, out, progress=not args.no_progress)
    print(f"aeuf: {s.responses} responses x {s.dims} features ({s.parts}); "
          f"newly embedded {s.encoded}; wrote {s.path}", file=sys.stderr)
    return 0
