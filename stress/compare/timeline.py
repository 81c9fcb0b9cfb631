#!/usr/bin/env python3
# SPDX-FileCopyrightText: the urgent authors
# SPDX-License-Identifier: MIT
"""stress/compare/timeline.py — draw traces (URG_DEBUG=trace=PATH) as an SVG
timeline: one panel per trace, one row per task, a bar wherever the task ran
on a proc (coloured by task; its tooltip says how the slice ended), and the
SIGURGs sysmon sent as ticks above. Standard library only.

usage: timeline.py [--window-ms MS] [--title T] OUT.svg LABEL=TRACE.json...
"""
import argparse
import json
import sys
from xml.sax.saxutils import escape

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
LEFT, RIGHT, ROW, GAP, TOP = 150, 30, 18, 6, 40


def load(path):
    with open(path) as f:
        doc = json.load(f)
    ev = doc["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in ev
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    slices = [e for e in ev if e.get("ph") == "X"]
    sigurg = [e["ts"] for e in ev if e.get("ph") == "i" and e.get("name") == "SIGURG"]
    return names, slices, sigurg


def panel(out, y, label, names, slices, sigurg, window_us, width):
    """Write one panel at y; return the y below it."""
    tasks = sorted({e["args"]["task"] for e in slices})
    scale = (width - LEFT - RIGHT) / window_us
    out.append(f'<text x="10" y="{y + 14}" font-weight="bold">{escape(label)}</text>')
    y += 22
    # SIGURG ticks (the sysmon track).
    out.append(f'<text x="10" y="{y + 11}" fill="#555">SIGURG sent</text>')
    for t in sigurg:
        if t <= window_us:
            x = LEFT + t * scale
            out.append(f'<line x1="{x:.1f}" y1="{y + 2}" x2="{x:.1f}" y2="{y + 13}" '
                       'stroke="#d62728" stroke-width="1"/>')
    y += ROW
    for i, task in enumerate(tasks):
        colour = COLOURS[i % len(COLOURS)]
        mine = [e for e in slices if e["args"]["task"] == task]
        ran = sum(min(e["ts"] + e["dur"], window_us) - e["ts"] for e in mine if e["ts"] < window_us)
        share = 100.0 * ran / window_us
        what = "main" if task == 1 else f"task {task}"
        out.append(f'<text x="10" y="{y + 12}">{what} ({share:.0f}%)</text>')
        out.append(f'<rect x="{LEFT}" y="{y + 1}" width="{width - LEFT - RIGHT}" height="{ROW - 2}" '
                   'fill="#f4f4f4"/>')
        for e in mine:
            if e["ts"] >= window_us:
                continue
            end = min(e["ts"] + e["dur"], window_us)
            x, w = LEFT + e["ts"] * scale, max((end - e["ts"]) * scale, 0.8)
            track = names.get(e["tid"], str(e["tid"]))
            tip = (f'task {task} on {track}: {e["ts"] / 1000:.3f} ms + {e["dur"] / 1000:.3f} ms, '
                   f'ended: {e["args"]["end"]}')
            out.append(f'<rect x="{x:.1f}" y="{y + 1}" width="{w:.1f}" height="{ROW - 2}" '
                       f'fill="{colour}"><title>{escape(tip)}</title></rect>')
        if share == 0:
            out.append(f'<text x="{LEFT + 6}" y="{y + 12}" fill="#d62728">starved: never ran</text>')
        y += ROW
    return y + GAP * 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window-ms", type=float, default=200.0)
    ap.add_argument("--title", default="4 call-free loops on 1 proc (10 ms quantum)")
    ap.add_argument("--width", type=int, default=900)
    ap.add_argument("out")
    ap.add_argument("traces", nargs="+", metavar="LABEL=TRACE.json")
    a = ap.parse_args()
    window_us = a.window_ms * 1000.0
    body = [f'<text x="10" y="20" font-size="15" font-weight="bold">{escape(a.title)}</text>']
    y = TOP
    for spec in a.traces:
        label, _, path = spec.partition("=")
        if not path:
            sys.exit(f"timeline.py: expected LABEL=TRACE.json, got {spec}")
        y = panel(body, y, label, *load(path), window_us, a.width)
    # Time axis.
    scale = (a.width - LEFT - RIGHT) / window_us
    step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
                 if a.window_ms / s <= 10), 10000)
    t = 0.0
    while t <= a.window_ms + 1e-9:
        x = LEFT + t * 1000 * scale
        body.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{y}" stroke="#ccc" '
                    'stroke-dasharray="2,3"/>')
        body.append(f'<text x="{x:.1f}" y="{y + 14}" text-anchor="middle">{t:g} ms</text>')
        t += step
    height = y + 24
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{a.width}" height="{height}" '
           f'viewBox="0 0 {a.width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{a.width}" height="{height}" fill="white"/>'] + body + ["</svg>"]
    with open(a.out, "w") as f:
        f.write("\n".join(svg) + "\n")
    print(f"wrote {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
