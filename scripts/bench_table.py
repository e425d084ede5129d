#!/usr/bin/env python3
"""Print weir-bench results as Markdown tables: a row per N, weir against the reference.

    scripts/bench_table.py results.json [more.json ...] [--label L] [--services S]

Columns: weight-change convergence p50/p99 (from the write to each stream's ACK, pooled
over a run's changes) for weir and the reference and the ratio of the p99s; steady-state
RSS of each and the ratio; steady-state CPU (percent of one core); first-config p99; and
responses per type (cds/eds/lds/rds) the streams received during endpoint churn. Same as
`scripts/plot_bench.py --table`; needs Python 3 only.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plot_bench  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="weir-bench JSON files")
    ap.add_argument("--label", help="only runs with this label")
    ap.add_argument("--services", type=int, help="only runs with this many services")
    args = ap.parse_args(argv)
    runs, machines = plot_bench.load_runs(args.results)
    if args.label is not None:
        runs = [r for r in runs if r.get("label", "") == args.label]
    if args.services is not None:
        runs = [r for r in runs if r["services"] == args.services]
    if not runs:
        sys.exit("no runs")
    plot_bench.table(runs, machines)


if __name__ == "__main__":
    main()
