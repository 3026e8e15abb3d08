#!/usr/bin/env python3
"""What a pre-trained CLIP knows of the `ramc synth` world, measured.

    scripts/clip_probe.py --ramc build/ramc --clip DIR [--world v2] [--seed 0] [--n 640]
                          [--work DIR] [--json OUT]

DIR is a `ramc pretrain-clip` output folder. The probe generates held-out
single-object images (`ramc synth --min-objects 1 --max-objects 1`, a seed
the pre-training data did not use, the same holdout as --seed) and ranks all
labels for each with plain CLIP ("A photo of a {label}.", `ramc predict
--baseline clip --top-k 1`). It reports top-1 over all labels, whether the
colour and the shape of the top label are right, and top-1 separately on
images of seen and of unseen labels; the held-out retrieval top-1 comes from
DIR/metrics.json. One JSON object on stdout (and in --json).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ramc", default="build/ramc")
    ap.add_argument("--clip", required=True)
    ap.add_argument("--world", default="v2")
    ap.add_argument("--seed", type=int, default=0, help="the world's seed (its holdout)")
    ap.add_argument("--n", type=int, default=640)
    ap.add_argument("--work", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    work = a.work or tempfile.mkdtemp(prefix="clip_probe.")
    data = os.path.join(work, "single_%s_%d_%d" % (a.world, a.seed, a.n))
    if not os.path.exists(os.path.join(data, "objects.jsonl")):
        # The test splits of a synth run never share images with its pre-training
        # split (other per-image seeds), and --test images of one object cycle
        # through all labels, so every label is probed n/64 times.
        cmd = [a.ramc, "synth", "--out", data, "--seed", str(a.seed), "--pretrain", "0", "--train", "0",
               "--test", str(a.n), "--min-objects", "1", "--max-objects", "1", "--objects", "--quiet", "--force"]
        if a.world != "v1":
            cmd += ["--world", a.world]
        subprocess.run(cmd, check=True)
    gzsl = json.load(open(os.path.join(data, "test_gzsl.json")))
    unseen = set(l.strip() for l in open(os.path.join(data, "unseen.txt")) if l.strip())
    # Top-1 by the object's diameter in pixels (the CLIP's patch is 8 at 64x64):
    # what a small object costs.
    bins = [(0, 12), (12, 16), (16, 24), (24, 1e9)]
    diameter = {}
    for line in open(os.path.join(data, "objects.jsonl")):
        r = json.loads(line)
        if r["split"] == "test_gzsl":
            diameter[os.path.normpath(os.path.join(data, r["image"]))] = 2 * r["objects"][0]["radius"]
    by_size = [[0, 0, 0] for _ in bins]  # right, shape right, images
    truth = {}
    for path, labels in gzsl["images"]:
        assert len(labels) == 1, (path, labels)
        truth[os.path.normpath(os.path.join(data, path))] = labels[0]
    out = subprocess.run([a.ramc, "predict", "--clip", os.path.join(a.clip, "clip.safetensors"),
                          "--vocab", a.clip, "--baseline", "clip",
                          "--labels-file", os.path.join(data, "classes_all.txt"), "--top-k", "1",
                          "--format", "tsv", "--batch", "32", os.path.join(data, "images", "test_gzsl")],
                         check=True, capture_output=True, text=True).stdout
    n = right = colour = shape = 0
    by = {"seen": [0, 0], "unseen": [0, 0]}
    for line in out.splitlines():
        img, label, _ = line.split("\t")
        want = truth[os.path.normpath(img)]
        ok = label == want
        n += 1
        right += ok
        colour += label.split()[0] == want.split()[0]
        shape += label.split()[1] == want.split()[1]
        k = "unseen" if want in unseen else "seen"
        by[k][0] += ok
        by[k][1] += 1
        d = diameter[os.path.normpath(img)]
        b = next(i for i, (lo, hi) in enumerate(bins) if lo <= d < hi)
        by_size[b][0] += ok
        by_size[b][1] += label.split()[1] == want.split()[1]
        by_size[b][2] += 1
    if n != len(truth):
        sys.exit("clip_probe: %d predictions for %d images" % (n, len(truth)))
    mpath = os.path.join(a.clip, "metrics.json")
    metrics = json.load(open(mpath)) if os.path.exists(mpath) else {}
    res = {
        "clip": a.clip,
        "world": a.world,
        "images": n,
        "top1": right / n,
        "colour": colour / n,
        "shape": shape / n,
        "top1_seen": by["seen"][0] / max(by["seen"][1], 1),
        "top1_unseen": by["unseen"][0] / max(by["unseen"][1], 1),
        "by_diameter": [{"pixels": "%g-%s" % (lo, "" if hi > 1e8 else "%g" % hi), "images": c[2],
                         "top1": c[0] / max(c[2], 1), "shape": c[1] / max(c[2], 1)}
                        for (lo, hi), c in zip(bins, by_size)],
        "retrieval_i2t": metrics.get("retrieval_i2t_top1"),
        "retrieval_t2i": metrics.get("retrieval_t2i_top1"),
        "retrieval_chance": metrics.get("retrieval_chance"),
        "seconds": metrics.get("seconds"),
    }
    text = json.dumps(res)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
