#!/usr/bin/env bash
# One threshold, 16 or 64 labels asked: precision and recall of RAM's official
# score and of the independent score (docs/predict.md, "Scores"), on a fresh
# synthetic set of the world the embedded default model was trained on.
#
#   scripts/score_threshold_demo.sh [--images N] [--seed S] [--threads T]
#
# 1. `ramc synth --world v1 --seed S --test N` (seed 0 by default: the
#    default model's own seen/unseen split; these test images are drawn anew);
# 2. `ramc predict --top-k 0 --format tsv` on its test_gzsl images, asking the
#    16 zero-shot labels (data/default/unseen.txt) and then all 64
#    (data/default/labels.txt), under each score;
# 3. per score, ONE threshold: the one with the best F1 when all 64 labels are
#    asked; then micro precision/recall at it over the labels asked, and over
#    the 16 labels that both runs ask;
# 4. the ranking quality of each score apart from any threshold: mAP of
#    `ramc eval --score` on the same images (test_gzsl with all 64 labels,
#    test_zsl with the 16 zero-shot ones).
# Prints a markdown table and the conditions. Needs ramc built (build/ramc)
# and Debian's python3. About 1 min of CPU for 400 images (2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
images=400 seed=0 threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --images) images=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "usage: $0 [--images N] [--seed S] [--threads T]" >&2; exit 2 ;;
  esac
done
ramc=build/ramc
[ -x "$ramc" ] || { echo "$0: build ramc first (scripts/build.sh --target ramc)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$ramc" synth --world v1 --seed "$seed" --out "$tmp/syn" --pretrain 0 --train 0 --test "$images" --quiet
start=$(date +%s) load=$(cut -d' ' -f1 /proc/loadavg)
for score in official independent; do
  "$ramc" predict --labels-file data/default/unseen.txt --score "$score" --top-k 0 --format tsv \
      --threads "$threads" "$tmp/syn/images/test_gzsl" > "$tmp/$score.16.tsv" 2>/dev/null
  "$ramc" predict --labels-file data/default/labels.txt --score "$score" --top-k 0 --format tsv \
      --threads "$threads" "$tmp/syn/images/test_gzsl" > "$tmp/$score.64.tsv" 2>/dev/null
done
seconds=$(( $(date +%s) - start ))
for score in official independent; do
  "$ramc" eval --score "$score" --threads "$threads" --image-root "$tmp/syn" \
      --test "$tmp/syn/test_gzsl.json" --classes data/default/labels.txt \
      --report "$tmp/$score.gzsl.json" > /dev/null 2>&1
  "$ramc" eval --score "$score" --threads "$threads" --image-root "$tmp/syn" \
      --test "$tmp/syn/test_zsl.json" --classes data/default/unseen.txt \
      --report "$tmp/$score.zsl.json" > /dev/null 2>&1
done

/usr/bin/python3 - "$tmp" "$images" "$seed" <<'EOF'
import json, sys
tmp, images, seed = sys.argv[1], sys.argv[2], sys.argv[3]
truth = {}
for path, labels in json.load(open(f"{tmp}/syn/test_gzsl.json"))["images"]:
    truth[f"{tmp}/syn/{path}"] = set(labels)
few = [l.strip() for l in open("data/default/unseen.txt") if l.strip()]

def load(path):
    rows = []
    for line in open(path):
        image, label, score = line.rstrip("\n").split("\t")
        rows.append((image.replace("//", "/"), label, float(score)))
    return rows

def pr(rows, t, only=None):
    tp = fp = fn = 0
    for image, label, s in rows:
        if only is not None and label not in only:
            continue
        pos = label in truth[image]
        if s >= t:
            tp += pos; fp += not pos
        else:
            fn += pos
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    return p, r

def best_f1_threshold(rows):
    ranked = sorted(((s, label in truth[image]) for image, label, s in rows), reverse=True)
    n_pos = sum(p for _, p in ranked)
    tp = fp = 0; best = (-1, 1.0)
    for s, p in ranked:
        tp += p; fp += not p
        f1 = 2 * tp / (tp + fp + n_pos)
        if f1 > best[0]: best = (f1, s)
    return best[1]

print("| score | threshold | labels asked | P (labels asked) | R (labels asked) "
      "| P (the 16 zero-shot labels) | R (the 16 zero-shot labels) |")
print("|---|---|---|---|---|---|---|")
for score in ("official", "independent"):
    r16, r64 = load(f"{tmp}/{score}.16.tsv"), load(f"{tmp}/{score}.64.tsv")
    t = best_f1_threshold(r64)
    for n, rows in ((64, r64), (16, r16)):
        p, r = pr(rows, t)
        ps, rs = pr(rows, t, set(few))
        print(f"| {score} | {t:.6g} | {n} | {100*p:.1f}% | {100*r:.1f}% | {100*ps:.1f}% | {100*rs:.1f}% |")
print("\n| score | mAP, test_gzsl, 64 labels | mAP, test_zsl, 16 labels |")
print("|---|---|---|")
for score in ("official", "independent"):
    m = [json.load(open(f"{tmp}/{score}.{s}.json"))["reports"][0]["mAP"] for s in ("gzsl", "zsl")]
    print(f"| {score} | {100*m[0]:.1f}% | {100*m[1]:.1f}% |")
n_img = len(truth)
print(f"\n{n_img} test_gzsl images of `ramc synth --world v1 --seed {seed} --test {images}`; "
      "the embedded default model; threshold: best F1 with all 64 labels asked, then kept for 16.")
EOF
echo
echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')), --threads $threads;" \
     "load average $load at the start (a shared machine); the four predict runs took ${seconds} s;" \
     "$(date -u +%Y-%m-%d)."
