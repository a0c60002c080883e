"""Run the validation fuzz harness (:mod:`planners.fuzz`) and report its outcomes.

Usage::

    python scripts/fuzz_report.py --json results/fuzz_report.json

Builds several thousand bad and borderline inputs over every registered env, game, learner
and planner, the experiment runner, its checkpoints and the TNTP reader, classifies each
outcome, prints the table of counts and writes the full report (counts per outcome and per
entry point, examples of every outcome the policy does not allow) as JSON. Exits with status 1
when any input had a non-clean outcome.
"""

from __future__ import annotations

import argparse
import json
import sys

from incentive_envs.io import check_writable, write_json_atomic
from planners.fuzz import CLEAN_OUTCOMES, fuzz, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--seed", type=int, default=0, help="seed of the file mutations")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a call counts as a hang")
    parser.add_argument("--examples", action="store_true", help="print the examples of non-clean outcomes")
    args = parser.parse_args(argv)
    if args.json is not None:
        check_writable(args.json, "--json")
    summary = fuzz(seed=args.seed, timeout=args.timeout)
    print(table(summary))
    print(f"({summary['seconds']:g} s)")
    if args.examples:
        print(json.dumps(summary["examples"], indent=2))
    if args.json is not None:
        write_json_atomic(args.json, summary)
        print(f"wrote {args.json}")
    return int(any(count for name, count in summary["counts"].items() if name not in CLEAN_OUTCOMES))


if __name__ == "__main__":
    sys.exit(main())
