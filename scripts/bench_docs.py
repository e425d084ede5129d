#!/usr/bin/env python3
"""Regenerate the measured sections of docs/benchmarks.md from `make bench` output.

    scripts/bench_docs.py docs/benchmarks.md docs/bench

Replaces the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->` markers:
  sweep      table of docs/bench/sweep.json (weir against the reference, N sweep)
  mesh       table of docs/bench/mesh.json (1,000 services, 2,000 streams)
  envoy      the real-Envoy edit-to-traffic line of docs/bench/envoy-edits.txt
  translate  the translator benchmark lines of docs/bench/translate.txt
A section whose input file is missing is left as it is. Python 3 only.
"""

import io
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plot_bench  # noqa: E402


def table_of(path):
    runs, machines = plot_bench.load_runs([path])
    out = io.StringIO()
    plot_bench.table(list(runs), machines, out=out)
    return out.getvalue().strip()


def lines_of(path, keep):
    with open(path) as f:
        picked = [ln.rstrip() for ln in f if keep(ln)]
    return "```\n" + "\n".join(picked) + "\n```"


def replace(doc, name, body):
    pattern = re.compile(r"(<!-- bench:%s -->\n)(?:.*?\n)?(<!-- /bench:%s -->)" % (name, name), re.S)
    if not pattern.search(doc):
        sys.exit(f"marker bench:{name} not found")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), doc)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    doc_path, bench_dir = argv
    with open(doc_path) as f:
        doc = f.read()
    sections = {
        "sweep": ("sweep.json", table_of),
        "mesh": ("mesh.json", table_of),
        "envoy": ("envoy-edits.txt", lambda p: lines_of(p, lambda ln: "MEASURE" in ln)),
        "translate": ("translate.txt", lambda p: lines_of(p, lambda ln: ln.startswith(("Benchmark", "cpu:", "goos")))),
    }
    for name, (file, render) in sections.items():
        path = os.path.join(bench_dir, file)
        if os.path.exists(path):
            doc = replace(doc, name, render(path))
    with open(doc_path, "w") as f:
        f.write(doc)


if __name__ == "__main__":
    main(sys.argv[1:])
