#!/usr/bin/env python3
"""Draws docs/BENCHMARKS.md's side-by-side results as PNG charts in docs/img/.

The figures are read from the tables recorded in docs/BENCHMARKS.md itself (one source of
truth): every inbound table with the columns `load | impulse | discard | smtp-sink | postfix`,
under a `### DATE...` heading, every outbound table `client | median msgs/s | ...`, and every
relay table `20,000 × 4 KiB... | impulse | postfix | impulse/postfix` (its end-to-end row).

    python3 bench/charts.py            # writes docs/img/inbound.png, inbound-ratios.png,
                                       # outbound.png, relay.png

Needs matplotlib (`pip install matplotlib`). Nothing here is run by the tests or CI.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "BENCHMARKS.md")
OUT = os.path.join(ROOT, "docs", "img")

LOADS = ["4k-reuse", "4k-conn/msg", "100k-reuse"]
SERVERS = ["impulse", "discard", "smtp-sink", "postfix"]
LABELS = {
    "impulse": "impulse (durable)",
    "discard": "impulse --discard",
    "smtp-sink": "smtp-sink",
    "postfix": "Postfix (hold queue)",
}


def number(cell):
    """`5,328` or `**3.41**` -> 5328.0 / 3.41; None when the cell holds no single figure."""
    text = cell.replace("*", "").replace(",", "").strip()
    return float(text) if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text) else None


def tables(lines):
    """Yields (heading, header cells, rows) for every Markdown table, with the nearest ###
    heading above it."""
    heading, sub, i = "", "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### ") or line.startswith("## "):
            heading, sub = line.lstrip("#").strip(), ""
        run = re.match(r"\*\*(Run [A-Z0-9]+)\*\*", line)
        if run:
            sub = " " + run.group(1)
        if line.startswith("`BENCH"):
            # A run's command line: a journalled ext4 run says so in its label.
            sub = " (ext4)" if "BENCH_FS=loop" in line else ""

        if line.startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in line.strip("|\n").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip("|\n").split("|")])
                i += 1
            yield heading + sub, header, rows
            continue
        i += 1


def inbound_runs(lines):
    """[(label, {load: {server: msgs/s}})] for every inbound msgs/s table, oldest first."""
    runs = []
    for heading, header, rows in tables(lines):
        if header[:5] != ["load"] + SERVERS or "impulse/postfix" not in header:
            continue
        figures = {}
        for row in rows:
            if row[0] in LOADS:
                values = [number(c) for c in row[1:5]]
                if all(v is not None for v in values):
                    figures[row[0]] = dict(zip(SERVERS, values))
        if len(figures) == len(LOADS):
            date = re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}( \([^)]*\))?( Run [A-Z0-9]+)?", heading)
            runs.append(((date.group(0) if date else heading)[:40], figures))
    return runs


def outbound_runs(lines):
    """[(label, {client: median msgs/s})] for every outbound table."""
    runs = []
    for heading, header, rows in tables(lines):
        if header[:2] != ["client", "median msgs/s"]:
            continue
        figures = {r[0]: number(r[1]) for r in rows if number(r[1]) is not None}
        if "impulse" in figures:
            runs.append((heading[:40] or "run", figures))
    return runs


def relay_runs(lines):
    """[(label, impulse msgs/s, postfix msgs/s)] for every relay table's end-to-end row."""
    runs = []
    for heading, header, rows in tables(lines):
        if not header[0].startswith("20,000") or header[1:4] != ["impulse", "postfix", "impulse/postfix"]:
            continue
        for row in rows:
            if row[0].startswith("end to end"):
                imp, pfx = number(row[1]), number(row[2])
                if imp and pfx:
                    date = re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", heading)
                    fs = " (ext4)" if heading.endswith("(ext4)") else ""
                    runs.append(((date.group(0) if date else heading[:20]) + fs, imp, pfx))
    return runs


def main():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("bench/charts.py needs matplotlib: pip install matplotlib")
    with open(DOC, encoding="utf-8") as f:
        lines = f.readlines()
    inbound, outbound, relay = inbound_runs(lines), outbound_runs(lines), relay_runs(lines)
    if not inbound or not outbound:
        sys.exit("no inbound or outbound tables found in docs/BENCHMARKS.md")
    os.makedirs(OUT, exist_ok=True)

    def grouped_bars(ax, groups, series):
        """One bar per (series, group): `series` is [(label, [value per group])]."""
        width = 0.8 / len(series)
        for k, (label, ys) in enumerate(series):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(groups))]
            bars = ax.bar(xs, ys, width, label=label)
            ax.bar_label(bars, labels=[f"{y:,.0f}" for y in ys], fontsize=7, padding=2)
        ax.set_xticks(range(len(groups)), groups)

    def save(fig, ax, ylabel, title, name):
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(OUT, name), dpi=110)
        plt.close(fig)

    # 1. The latest inbound run: msgs/s of the four servers for each load.
    label, figures = inbound[-1]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    grouped_bars(ax, LOADS, [(LABELS[s], [figures[l][s] for l in LOADS]) for s in SERVERS])
    save(fig, ax, "messages per second", f"Inbound, smtp-source loads ({label})", "inbound.png")

    # 2. impulse (durable) / Postfix over every recorded run, against the 3x target.
    fig, ax = plt.subplots(figsize=(9, 4.5))
    xs = range(len(inbound))
    for load in LOADS:
        ratios = [f[load]["impulse"] / f[load]["postfix"] for _, f in inbound]
        ax.plot(xs, ratios, marker="o", label=load)
    ax.axhline(3.0, color="grey", linestyle="--", linewidth=1, label="target 3x")
    ax.set_xticks(list(xs), [label for label, _ in inbound], rotation=30, ha="right", fontsize=7)
    save(fig, ax, "impulse durable / Postfix",
         "Inbound: durable Impulse over Postfix, every recorded run", "inbound-ratios.png")

    # 3. Outbound: the clients' median msgs/s, per recorded run.
    clients = ["impulse", "smtp-source -d", "smtp-source"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    grouped_bars(ax, clients, [(l, [f.get(c, 0) for c in clients]) for l, f in outbound])
    save(fig, ax, "messages per second (median)",
         "Outbound: 20,000 x 4 KiB to one smtp-sink, 20 connections", "outbound.png")
    # 4. The relay end to end: impulse and Postfix relaying to one smtp-sink, per run.
    if relay:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        labels = [f"{l}\n{i / p:.2f}x" for l, i, p in relay]
        grouped_bars(ax, labels, [("impulse serve (relay)", [i for _, i, _ in relay]),
                                  ("Postfix", [p for _, _, p in relay])])
        save(fig, ax, "messages per second, end to end (median)",
             "Relay: 20,000 x 4 KiB through the server to one smtp-sink", "relay.png")
    print(f"wrote {OUT}/inbound.png, inbound-ratios.png, outbound.png, relay.png "
          f"({len(inbound)} inbound runs, {len(outbound)} outbound runs, {len(relay)} relay runs)")


if __name__ == "__main__":
    main()
