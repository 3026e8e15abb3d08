#!/usr/bin/env python3
"""Markdown table of one or more `ramc bench --json` outputs (docs/performance.md).

usage: scripts/bench_table.py RESULT.json [RESULT.json ...]

One row per scenario and file: precision, the median with min-max, GFLOP/s
(35.1 GFLOP per image; RAM scenarios also against 44), peak memory, the
official figure and the ratio, and the peak memory against the official one.
"""
import json
import sys


def fmt(x, digits=3):
    if x is None:
        return ""
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return ("%%.%dg" % digits) % x


def main(paths):
    print("| scenario | precision | ramc median (min-max) | GFLOP/s | peak RSS | official | ratio | peak vs official |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        with open(path) as f:
            d = json.load(f)
        prec = d.get("precision", "f32")
        for s in d["scenarios"]:
            if "error" in s:
                print("| %s | %s | error: %s | | | | | |" % (s["name"], prec, s["error"]))
                continue
            unit = s["unit"].replace("/s", "")
            rate = "%s (%s-%s) %s/s" % (fmt(s["median"]), fmt(s["min"]), fmt(s["max"]), unit)
            gf = fmt(s["gflops"])
            if s.get("gflops_ram"):
                gf += " / " + fmt(s["gflops_ram"])
            peak = "%.0f MB" % s["peak_rss_mb"]
            off = s.get("official")
            ratio = ("**%.2fx**" % s["ratio"]) if s.get("ratio") else ""
            offpeak = s.get("official_peak_rss_mb")
            mem = ("%.0f%%" % (100.0 * s["peak_rss_mb"] / offpeak)) if offpeak else ""
            print("| %s | %s | %s | %s | %s | %s | %s | %s |"
                  % (s["name"], prec, rate, gf, peak, fmt(off) if off else "", ratio, mem))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
