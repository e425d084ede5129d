#!/usr/bin/env python3
"""Plot weight-change convergence against stream count from weir-bench results.

    scripts/plot_bench.py results.json [more.json ...] -o docs/convergence.png
    scripts/plot_bench.py results.json --table      # the Markdown table instead

Reads one or more weir-bench JSON files (schema weir-bench/v1) and plots, for each
server, the p50 and p99 of the time from a weight change being written to each stream
ACKing its new routes (pooled over the changes of a run), against N, on a log scale.
Runs that failed are left out of the plot and flagged in the table. When several files
hold the same (label, server, services, N) run, the last file given wins.

Needs Python 3 and, for the plot only, matplotlib.
"""

import argparse
import json
import sys

SCHEMA = "weir-bench/v1"
SERVER_ORDER = ["weir", "reference"]
TYPES = ["cds", "eds", "lds", "srds", "rds"]


def load_runs(paths):
    """Returns (runs, machines): runs deduplicated by (label, server, services, N)."""
    runs, machines = {}, []
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        if isinstance(doc, list):  # a bare list of runs
            doc = {"runs": doc}
        if doc.get("schema", SCHEMA) != SCHEMA:
            print(f"{path}: schema {doc.get('schema')!r}, expected {SCHEMA!r}; reading anyway", file=sys.stderr)
        machine = doc.get("machine") or {}
        if machine and machine not in machines:
            machines.append(machine)
        for r in doc.get("runs", []):
            key = (r.get("label", ""), r["server"], r["services"], r["n"])
            if key in runs:
                print(f"{path}: replaces an earlier {key} run", file=sys.stderr)
            runs[key] = r
    return list(runs.values()), machines


def machine_title(machines):
    if not machines:
        return "unknown machine"
    parts = []
    for m in machines:
        mem = m.get("mem_total_bytes", 0) / 2**30
        parts.append(f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, {mem:.0f} GiB, "
                     f"Linux {m.get('kernel', '?')}, {m.get('go_version', '?')}")
    return "; ".join(parts)


def ok(run):
    return not run.get("error")


def change(run, q):
    """Pooled from-change percentile q ('p50'/'p99'/'max') in seconds, or None."""
    c = (run.get("change") or {}).get("from_change") or {}
    if not c.get("count"):
        return None
    return c.get(f"{q}_seconds")


def series_key(run, multi):
    label = run["server"]
    if multi:
        label += f" ({run['services']} svcs" + (f", {run['label']}" if run.get("label") else "") + ")"
    return label


def server_rank(name):
    return SERVER_ORDER.index(name) if name in SERVER_ORDER else len(SERVER_ORDER)


def plot(runs, machines, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    groups = {(r.get("label", ""), r["services"]) for r in runs}
    multi = len(groups) > 1
    series = {}
    for r in runs:
        if ok(r) and change(r, "p50") is not None:
            series.setdefault(series_key(r, multi), []).append(r)
    if not series:
        sys.exit("no successful run with a weight change to plot")

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ordered = sorted(series, key=lambda k: (server_rank(series[k][0]["server"]), k))
    for i, name in enumerate(ordered):
        rs = sorted(series[name], key=lambda r: r["n"])
        ns = [r["n"] for r in rs]
        color = colors[i % len(colors)]
        ax.plot(ns, [change(r, "p50") for r in rs], "o-", color=color, label=f"{name} p50")
        ax.plot(ns, [change(r, "p99") for r in rs], "s--", color=color, label=f"{name} p99")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt_s(v)))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xscale("log")
    ax.set_xlabel("ADS streams (N, log)")
    ax.set_ylabel("weight change written → streams ACK (log)")
    allns = sorted({r["n"] for rs in series.values() for r in rs})
    ax.set_xticks(allns)
    ax.set_xticklabels([str(n) for n in allns], rotation=45 if len(allns) > 6 else 0)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    first = runs[0]
    ax.set_title(f"RDS convergence of a weight change ({first['services']} services, {first['classes']} classes)"
                 if not multi else "RDS convergence of a weight change", fontsize=11)
    fig.suptitle(machine_title(machines), fontsize=8, y=0.995)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


def fmt_s(v):
    if v is None:
        return "–"
    if v < 1:
        return f"{v * 1000:.0f} ms"
    return f"{v:.2f} s" if v < 10 else f"{v:.0f} s"


def fmt_ratio(a, b):
    if a is None or b is None or not b:
        return "–"
    return f"{a / b:.1f}×"


def steady(run, field):
    s = run.get("steady") or {}
    return s.get(field)


def mib(v):
    return "–" if v is None else f"{v / 2**20:.0f} MiB"


def rss_end(run):
    """Steady-state RSS: at the end of the steady window (older results: its max)."""
    s = run.get("steady") or {}
    return s.get("rss_end_bytes") or s.get("rss_max_bytes")


def rss_cell(run):
    if run is None:
        return "–"
    end, peak = rss_end(run), steady(run, "rss_max_bytes")
    if end is None:
        return "–"
    if peak and peak > end * 1.05:
        return f"{mib(end)} (max {peak / 2**20:.0f})"
    return mib(end)


def pct(v):
    return "–" if v is None else f"{100 * v:.1f} %"


def churn_responses(run):
    ch = run.get("churn")
    if not ch or not ch.get("responses"):
        return "–"
    return "/".join(str(ch["responses"].get(t, {}).get("responses", 0)) for t in TYPES)


def table(runs, machines, out=sys.stdout):
    """Prints one Markdown table per (label, services): a row per N, weir against reference."""
    groups = {}
    for r in runs:
        groups.setdefault((r.get("label", ""), r["services"]), {}).setdefault(r["n"], {})[r["server"]] = r
    print(f"Machine: {machine_title(machines)}\n", file=out)
    for (label, services), byn in sorted(groups.items()):
        any_run = next(iter(next(iter(byn.values())).values()))
        title = f"{services} services × {any_run['subsets']} subsets × {any_run['endpoints']} endpoints, {any_run['classes']} classes"
        if label:
            title = f"{label}: {title}"
        print(f"**{title}**\n", file=out)
        print("| N | weir p50 | weir p99 | ref p50 | ref p99 | p99 ref/weir | RSS weir, steady | RSS ref, steady | RSS ref/weir "
              "| CPU weir | CPU ref | first-config p99 weir | first-config p99 ref "
              "| churn responses weir (cds/eds/lds/srds/rds) | churn responses ref (cds/eds/lds/srds/rds) |", file=out)
        print("|" + "---:|" * 15, file=out)
        notes = []
        for n in sorted(byn):
            w, ref = byn[n].get("weir"), byn[n].get("reference")

            def get(run, f):
                return f(run) if run and ok(run) else None

            wp50, wp99 = get(w, lambda r: change(r, "p50")), get(w, lambda r: change(r, "p99"))
            rp50, rp99 = get(ref, lambda r: change(r, "p50")), get(ref, lambda r: change(r, "p99"))
            wrss, rrss = get(w, rss_end), get(ref, rss_end)
            cells = [str(n), fmt_s(wp50), fmt_s(wp99), fmt_s(rp50), fmt_s(rp99), fmt_ratio(rp99, wp99),
                     get(w, rss_cell) or "–", get(ref, rss_cell) or "–", fmt_ratio(rrss, wrss),
                     pct(get(w, lambda r: steady(r, "cpu_cores"))), pct(get(ref, lambda r: steady(r, "cpu_cores"))),
                     fmt_s(get(w, lambda r: r["first_config"]["p99_seconds"])),
                     fmt_s(get(ref, lambda r: r["first_config"]["p99_seconds"])),
                     get(w, churn_responses) or "–", get(ref, churn_responses) or "–"]
            for run in (w, ref):
                if run and not ok(run):
                    notes.append(f"- {run['server']} at N={n} failed: {run['error']}")
            print("| " + " | ".join(cells) + " |", file=out)
        if notes:
            print("", file=out)
            print("\n".join(notes), file=out)
        print("", file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", nargs="+", help="weir-bench JSON files")
    ap.add_argument("-o", "--output", default="docs/convergence.png", help="PNG to write")
    ap.add_argument("--table", action="store_true", help="print the Markdown table instead of plotting")
    ap.add_argument("--label", help="only runs with this label")
    ap.add_argument("--services", type=int, help="only runs with this many services")
    args = ap.parse_args(argv)
    runs, machines = load_runs(args.results)
    if args.label is not None:
        runs = [r for r in runs if r.get("label", "") == args.label]
    if args.services is not None:
        runs = [r for r in runs if r["services"] == args.services]
    if not runs:
        sys.exit("no runs")
    if args.table:
        table(runs, machines)
    else:
        plot(runs, machines, args.output)


if __name__ == "__main__":
    main()
