#!/usr/bin/env python3
"""Collects the reports of scripts/experiments.sh into a table and a plot.

Reads OUT/runs/seed*/VARIANT/eval-epoch*-{zsl,gzsl}-live.json (written by
`ramc train`), OUT/zeroshot/ram_zeroshot.json (`ramc eval` without adapter)
and OUT/zeroshot/clip_{zsl,gzsl}.tsv (`ramc predict --baseline clip` scores,
whose OF1@3 and mAP are computed here with the rules of docs/metrics.md).
Writes OUT/results.json, OUT/table.md, DOCS/experiments.png and replaces the
block between the table markers of DOCS/experiments.md (creating the file if
missing), so the hand-written discussion around it survives a rerun.
Plain Python only; matplotlib is used when present.
"""
import argparse
import glob
import json
import math
import os
import re
import sys

VARIANTS = [  # (key, row label)
    ("avgpool", "Average pooling"),
    ("reweight", "Re-weighting"),
    ("ot", "OT (uniform marginal, no teacher)"),
    ("ram", "KCOT = RAM"),
    ("no_saa", "RAM w/o SAA"),
    ("no_tss", "RAM w/o TSS"),
]
METRICS = [("zsl", "F1"), ("zsl", "mAP"), ("gzsl", "F1"), ("gzsl", "mAP")]
BEGIN, END = "<!-- experiments-table:begin -->", "<!-- experiments-table:end -->"


def report_metrics(rep):
    f1 = [t for t in rep["topk"] if t["k"] == 3][0]["OF1"]
    return {"F1": 100.0 * f1, "mAP": 100.0 * rep["mAP"]}


def read_list(path):
    with open(path, encoding="utf-8") as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


def gt_matrix(json_path, classes):
    """image basename -> set of class indices, from an official-format JSON."""
    with open(json_path, encoding="utf-8") as f:
        d = json.load(f)
    index = {c: i for i, c in enumerate(classes)}
    return {os.path.basename(p): {index[l] for l in labels} for p, labels in d["images"]}


def of1_at_k(scores, gt, k):
    tp = n_pos = n_pred = 0
    for s, g in zip(scores, gt):
        # larger score first, ties to the lower class index (docs/metrics.md)
        top = sorted(range(len(s)), key=lambda j: (-s[j], j))[:k]
        tp += sum(1 for j in top if j in g)
        n_pred += len(top)
        n_pos += len(g)
    p, r = tp / n_pred, tp / n_pos
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def mean_ap(scores, gt, n_classes):
    aps = []
    for j in range(n_classes):
        npos = sum(1 for g in gt if j in g)
        if npos == 0:
            continue  # skipped, not counted as 0 (docs/metrics.md)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i][j], i))
        hits, acc = 0, 0.0
        for r, i in enumerate(order, 1):
            if j in gt[i]:
                hits += 1
                acc += hits / r
        aps.append(acc / npos)
    return sum(aps) / len(aps)


def clip_baseline(tsv, json_path, classes):
    gt_by_name = gt_matrix(json_path, classes)
    index = {c: i for i, c in enumerate(classes)}
    rows = {}
    with open(tsv, encoding="utf-8") as f:
        for ln in f:
            img, label, score = ln.rstrip("\n").split("\t")
            rows.setdefault(os.path.basename(img), [0.0] * len(classes))[index[label]] = float(score)
    names = sorted(gt_by_name)
    missing = [n for n in names if n not in rows]
    if missing:
        sys.exit(f"experiments_collect: {tsv}: no scores for {len(missing)} images, e.g. {missing[0]}")
    scores = [rows[n] for n in names]
    gt = [gt_by_name[n] for n in names]
    return {"F1": 100.0 * of1_at_k(scores, gt, 3), "mAP": 100.0 * mean_ap(scores, gt, len(classes))}


def mean_std(xs):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


def read_times(path):
    times = {}
    if os.path.exists(path):
        for ln in open(path):
            parts = ln.split()
            if len(parts) == 2 and parts[1].isdigit():
                times[parts[0]] = int(parts[1])  # the last measurement wins
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--docs", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--seeds", type=int, required=True)
    ap.add_argument("--quick", type=int, default=0)
    ap.add_argument("--sizes", default="")
    ap.add_argument("--ram-sets", default="")
    a = ap.parse_args()
    S = os.path.join(a.out, "synth")
    seen, unseen = read_list(os.path.join(S, "seen.txt")), read_list(os.path.join(S, "unseen.txt"))

    rows = []  # (label, {metric key: [values]})
    z = os.path.join(a.out, "zeroshot")
    clip = {"zsl": clip_baseline(os.path.join(z, "clip_zsl.tsv"), os.path.join(S, "test_zsl.json"), unseen),
            "gzsl": clip_baseline(os.path.join(z, "clip_gzsl.tsv"), os.path.join(S, "test_gzsl.json"),
                                  seen + unseen)}
    rows.append(("CLIP zero-shot (global embedding)", {f"{s}_{m}": [clip[s][m]] for s, m in METRICS}))
    zs = {r["name"]: report_metrics(r) for r in json.load(open(os.path.join(z, "ram_zeroshot.json")))["reports"]}
    rows.append(("RAM zero-shot path (frozen CLIP, SAA + KCOT, no training)",
                 {f"{s}_{m}": [zs[s][m]] for s, m in METRICS}))

    per_seed = {}
    seeds = list(range(a.seed, a.seed + a.seeds))
    for key, label in VARIANTS:
        vals = {f"{s}_{m}": [] for s, m in METRICS}
        for ts in seeds:
            run = os.path.join(a.out, "runs", f"seed{ts}", key)
            for s in ("zsl", "gzsl"):
                files = sorted(glob.glob(os.path.join(run, f"eval-epoch*-{s}-live.json")),
                               key=lambda p: int(re.search(r"epoch(\d+)", p).group(1)))
                if not files:
                    sys.exit(f"experiments_collect: no {s} report in {run}")
                m = report_metrics(json.load(open(files[-1])))  # the last epoch
                for mk in ("F1", "mAP"):
                    vals[f"{s}_{mk}"].append(m[mk])
                    per_seed.setdefault(key, {}).setdefault(f"{s}_{mk}", []).append(m[mk])
        rows.append((label, vals))

    curves = read_loss_curves(a.out, seeds)
    times = read_times(os.path.join(a.out, "times.txt"))
    stage_total = sum(v for k, v in times.items() if k != "invocation")
    n_seeds = a.seeds
    lines = []
    lines.append(f"| method | ZSL F1@3 | ZSL mAP | GZSL F1@3 | GZSL mAP |")
    lines.append("|---|---|---|---|---|")
    for label, vals in rows:
        cells = []
        for s, m in METRICS:
            xs = vals[f"{s}_{m}"]
            mu, sd = mean_std(xs)
            cells.append(f"{mu:.2f} ± {sd:.2f}" if len(xs) > 1 else f"{mu:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    trained_times = [v for k, v in times.items() if k.startswith("train-")]
    note = (f"Generated by `scripts/experiments.sh --seed {a.seed} --seeds {n_seeds}"
            f"{' --quick' if a.quick else ''}`: {a.sizes}; RAM seeds {seeds[0]}..{seeds[-1]} "
            f"(mean ± sample std over {n_seeds} seeds for the trained rows; the two zero-shot rows "
            f"do not depend on it). Values in percent; F1@3 is OF1 at top-3.\n\n"
            f"Measured stage times (s): " +
            ", ".join(f"{k} {times[k]}" for k in ("synth", "pretrain", "zeroshot") if k in times) +
            (f", RAM training + evaluation {sum(trained_times)} for {len(trained_times)} runs"
             f" (mean {sum(trained_times) / len(trained_times):.0f} per run)" if trained_times else "") +
            f"; total {stage_total} s = {stage_total / 60:.1f} min.")
    plateau = plateau_table(curves)
    loss_png = "\n\n![training loss of RAM and its ablations](experiments_loss.png)" if curves else ""
    block = (f"{BEGIN}\n{note}\n\n{table}\n\n![ZSL and GZSL F1@3 and mAP](experiments.png)"
             f"{plateau}{loss_png}\n{END}")

    os.makedirs(a.docs, exist_ok=True)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(block + "\n")
    results = {"seed": a.seed, "seeds": seeds, "sizes": a.sizes, "ram_sets": a.ram_sets,
               "times_s": times, "rows": [{"method": l, **v} for l, v in rows],
               "loss_levels": {k: levels(c) for k, c in curves.items()}}
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    doc = os.path.join(a.docs, "experiments.md")
    if os.path.exists(doc) and BEGIN in open(doc).read():
        text = open(doc).read()
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = "# Experiments on the synthetic world\n\n" + block + "\n"
    with open(doc, "w") as f:
        f.write(text)
    print(table)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("experiments_collect: matplotlib missing (apt-get install python3-matplotlib): "
              "no plot written", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=90)
    n = len(rows)
    width = 0.8 / n
    colours = plt.get_cmap("tab10")
    for r, (label, vals) in enumerate(rows):
        mus, sds = zip(*(mean_std(vals[f"{s}_{m}"]) for s, m in METRICS))
        xs = [i + (r - (n - 1) / 2) * width for i in range(len(METRICS))]
        ax.bar(xs, mus, width, yerr=sds, capsize=2, label=label, color=colours(r))
    ax.set_xticks(range(len(METRICS)))
    ax.set_xticklabels([f"{s.upper()} {'F1@3' if m == 'F1' else m}" for s, m in METRICS])
    ax.set_ylabel("percent")
    seeds_txt = f"mean ± std over {n_seeds} seeds" if n_seeds > 1 else "1 seed"
    ax.set_title(f"Synthetic world: RAM, ablations and zero-shot baselines ({seeds_txt})")
    # below the axes: inside, the legend hid the bars of the first group
    ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(a.docs, "experiments.png"))
    print(f"wrote {os.path.join(a.docs, 'experiments.png')}", file=sys.stderr)
    if curves:
        plot_loss_curves(plt, curves, os.path.join(a.docs, "experiments_loss.png"), n_seeds)


def read_loss_curves(out, seeds):
    """{variant: [per seed: [(global_step, loss), ...]]} from the runs' log.jsonl
    (written when the runs log every step: log_period=1)."""
    curves = {}
    for key, _ in VARIANTS:
        per_seed = []
        for ts in seeds:
            path = os.path.join(out, "runs", f"seed{ts}", key, "log.jsonl")
            if not os.path.exists(path):
                continue
            pts = []
            for ln in open(path):
                ev = json.loads(ln)
                if ev.get("event") == "step" and "loss" in ev:
                    pts.append((ev["global_step"], ev["loss"]))
            if pts:
                per_seed.append(pts)
        if per_seed:
            curves[key] = per_seed
    return curves


def mean_curve(per_seed):
    """The seeds' losses averaged step by step, over the steps all seeds logged."""
    n = min(len(c) for c in per_seed)
    return [(per_seed[0][i][0], sum(c[i][1] for c in per_seed) / len(per_seed)) for i in range(n)]


def levels(per_seed):
    """Mean loss (averaged over seeds) in the first, the second-to-last and the
    last tenth of the steps: a run has levelled off when the last two are close."""
    c = [l for _, l in mean_curve(per_seed)]
    t = max(len(c) // 10, 1)
    avg = lambda xs: sum(xs) / len(xs)
    return {"first": avg(c[:t]), "second_last": avg(c[-2 * t:-t] or c[-t:]), "last": avg(c[-t:]),
            "steps": len(c)}


def plateau_table(curves):
    if not curves:
        return ""
    names = dict(VARIANTS)
    lines = ["", "", "Training loss (mean over seeds) in the first, the next-to-last and the last tenth "
             "of the steps; the last column is the change over the last tenth, relative to the whole fall:",
             "", "| run | steps | first 10% | next-to-last 10% | last 10% | last tenth / whole fall |",
             "|---|---|---|---|---|---|"]
    for key, per_seed in curves.items():
        lv = levels(per_seed)
        fall = lv["first"] - lv["last"]
        share = (lv["second_last"] - lv["last"]) / fall if fall > 0 else float("nan")
        lines.append(f"| {names[key]} | {lv['steps']} | {lv['first']:.3f} | {lv['second_last']:.3f} | "
                     f"{lv['last']:.3f} | {100 * share:.1f}% |")
    return "\n".join(lines)


def plot_loss_curves(plt, curves, path, n_seeds):
    names = dict(VARIANTS)
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=90)
    colours = plt.get_cmap("tab10")
    for r, (key, per_seed) in enumerate(curves.items()):
        c = mean_curve(per_seed)
        w = max(len(c) // 40, 1)  # a moving average over 2.5% of the run
        xs = [s for s, _ in c][w - 1:]
        ys = [sum(l for _, l in c[i - w + 1:i + 1]) / w for i in range(w - 1, len(c))]
        ax.plot(xs, ys, label=names[key], color=colours(r + 2), lw=1.4)
    ax.set_yscale("log")  # average pooling and re-weighting start 5x higher than the rest
    ax.set_xlabel("training step (batch 32)")
    ax.set_ylabel("training loss (MMC, global + local), log scale")
    seeds_txt = f"mean over {n_seeds} seeds" if n_seeds > 1 else "1 seed"
    ax.set_title(f"RAM and its ablations: training loss ({seeds_txt}, moving average)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
