"""`aeuf PROMPTS ...` (also `aeuf run PROMPTS ...`): the whole active-labelling job.

Flags keep AEPO's names (`--num_responses`, `--num_annotations`, `--num_instructions`,
`--west_of_n`). Each flag maps to one field of one stage config in aeuf.config.
"""

from __future__ import annotations

import argparse
import sys
from typing import NamedTuple

from aeuf.commands.judge import add_oracle_arguments, oracle_config
from aeuf.config import (
    AcquireConfig,
    ExportConfig,
    FeatureConfig,
    HeadConfig,
    InputConfig,
    LoopConfig,
    RunConfig,
)


class Flag(NamedTuple):
    name: str
    section: str
    field: str
    type: type | None
    help: str


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


FLAGS = [
    Flag("num_responses", "input", "num_responses", int, "use the first N responses of each prompt"),
    Flag("num_instructions", "input", "num_instructions", int, "use the first N prompts"),
    Flag("prompt_column", "input", "prompt_column", str, "prompt column (default: prompt or instruction)"),
    Flag("num_annotations", "acquire", "num_annotations", int, "responses per prompt sent to the oracle (2 = a pair)"),
    Flag("rule", "acquire", "rule", str, "acquisition rule (dts, deltaucb, infomax, random, aepo, ...)"),
    Flag("beta", "acquire", "beta", float, "UCB/LCB width"),
    Flag("aepo_lambda", "acquire", "aepo_lambda", float, "AEPO redundancy weight"),
    Flag("prompt_beta", "acquire", "prompt_beta", float, "BAL-PM entropy weight for choosing prompts"),
    Flag("features", "features", "features", str, "feature parts joined by '+': minilm, stats, model, llm, file"),
    Flag("encoder", "features", "encoder", str, "sentence-transformers model name or path"),
    Flag("llm_encoder", "features", "llm_encoder", str, "causal LM for the 'llm' feature part"),
    Flag("precomputed", "features", "precomputed", str, "precomputed features for the 'file' part"),
    Flag("head", "head", "name", str, "reward head: ensemble or bll"),
    Flag("members", "head", "members", int, "ensemble members / posterior samples K"),
    Flag("hidden", "head", "hidden", _ints, "hidden layer widths, e.g. 128,128"),
    Flag("epochs", "head", "epochs", int, "training epochs per round"),
    Flag("learning_rate", "head", "learning_rate", float, "head learning rate"),
    Flag("anchor", "head", "anchor", float, "anchored-regulariser strength"),
    Flag("budget", "loop", "budget", int, "prompts to label in total (default: all)"),
    Flag("batch_size", "loop", "batch_size", int, "prompts labelled per round"),
    Flag("initial_batch", "loop", "initial_batch", int, "prompts in the first (model-free) round"),
    Flag("initial_rule", "loop", "initial_rule", str, "model-free rule of the first round"),
    Flag("seed", "loop", "seed", int, "random seed"),
    Flag("output_dir", "export", "output_dir", str, "run directory (default runs/<input name>)"),
    Flag("push_to_hub", "export", "push_to_hub", str, "also push the dataset to this hub repo"),
    Flag("west_of_n", "export", "west_of_n", None, "keep the best and worst judged response"),
    Flag("all_pairs", "export", "all_pairs", None, "with k > 2: export every ordered pair"),
]

SECTIONS = {"input": InputConfig, "features": FeatureConfig, "head": HeadConfig,
            "acquire": AcquireConfig, "loop": LoopConfig, "export": ExportConfig}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompts", help="CSV/JSONL/parquet file, save_to_disk folder or hub dataset id")
    for f in FLAGS:
        if f.type is None:
            parser.add_argument(f"--{f.name}", action="store_true", default=None, help=f.help)
        else:
            parser.add_argument(f"--{f.name}", type=f.type, default=None, help=f.help)
    add_oracle_arguments(parser)  # the same oracle flags as `aeuf judge`
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Flags that were given override each stage config's defaults."""
    fields: dict[str, dict] = {name: {} for name in SECTIONS}
    fields["input"]["path"] = args.prompts
    for f in FLAGS:
        value = getattr(args, f.name)
        if value is not None:
            fields[f.section][f.field] = value
    return RunConfig(**{name: cls(**fields[name]) for name, cls in SECTIONS.items()},
                     oracle=oracle_config(args))


def print_summary(s) -> None:
    say = lambda *a: print(*a, file=sys.stderr)  # noqa: E731
    if s.annotation_file is not None:
        say(f"aeuf: no oracle available (no gold columns, no --judge_base_url): wrote the "
            f"selected responses to {s.annotation_file}. Judge them with "
            f"`aeuf judge {s.annotation_file} --judge_base_url URL --judge_model NAME`, or rerun "
            f"with --oracle local or --judge_base_url URL.")
        return
    say(f"aeuf: {s.labelled} of {s.prompts} prompts labelled by the {s.oracle} oracle; "
        f"{s.comparisons} comparisons, {s.requests_logged} oracle requests "
        f"({s.requests_sent} sent now), cost ${s.cost:.4f}; {s.failed} prompts without a usable label.")
    agree = [f"{r['agreement']:.2f}" for r in s.progress if r["agreement"] is not None]
    if agree:
        say(f"aeuf: head agreed with the oracle before labelling, per round: {', '.join(agree)}")
    if s.stopped_by_budget:
        say("aeuf: stopped at the --max_cost/--max_requests budget; raise it and rerun to continue.")
    for kind, path in s.files.items():
        say(f"  {kind}: {path}")


def run(args: argparse.Namespace) -> int:
    from aeuf.loop import run as run_loop

    summary = run_loop(config_from_args(args), progress=not args.no_progress)
    print_summary(summary)
    return 0
