#!/usr/bin/env bash
# Rebuilds the embedded default model (data/default/) and the sample images
# (data/samples/) from a finished run of scripts/experiments.sh:
#   * clip.safetensors: the run's pre-trained CLIP, float16 (ramc rounds CLIP
#     weights to float16 when loading anyway, so nothing changes);
#   * adapter.safetensors: the RAM adapter of the run's first seed (row
#     "KCOT = RAM"), float16;
#   * vocab.json, merges.txt: the CLIP's tokenizer; labels.txt, seen.txt,
#     unseen.txt: the world's label lists;
#   * data/samples/: N images of a fresh test split of the same world (other
#     per-image seeds than every image the run trained or evaluated on), busy
#     scenes of 2 and of 3-5 objects with distractors, each holding an unseen label,
#     named after their objects.
# Then prints the model's F1@3 and mAP on a fresh 200-image split, the values
# tests/cli_default_model.sh checks (docs/experiments.md records them).
#
#   scripts/make_default_model.sh [--run OUT] [--samples N]
set -euo pipefail
cd "$(dirname "$0")/.."
RAMC=${RAMC:-build/ramc}
PY=${PY:-/usr/bin/python3}
run=out/experiments samples=8
while [ $# -gt 0 ]; do
    case "$1" in
        --run) run=$2; shift 2 ;;
        --samples) samples=$2; shift 2 ;;
        -h|--help) sed -n 2,17p "$0"; exit 0 ;;
        *) echo "make_default_model.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
S=$run/synth C=$run/clip
seed=$(sed -n 's/.*--seed \([0-9]*\).*/\1/p' "$S/.args")
A=$run/runs/seed$seed/ram/adapter.safetensors
for f in "$C/clip.safetensors" "$C/vocab.json" "$C/merges.txt" "$A" "$S/seen.txt" "$S/unseen.txt"; do
    [ -s "$f" ] || { echo "make_default_model.sh: $f is missing (run scripts/experiments.sh first)" >&2; exit 1; }
done

D=data/default
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$RAMC" convert --f16 "$C/clip.safetensors" "$tmp/clip.safetensors"
"$RAMC" convert --f16 "$A" "$tmp/adapter.safetensors"
cp "$C/vocab.json" "$C/merges.txt" "$S/seen.txt" "$S/unseen.txt" "$tmp/"
cat "$S/seen.txt" "$S/unseen.txt" | LC_ALL=C sort > "$tmp/labels.txt"
world_args=$(cat "$S/.args")
clip_args=$(head -n 1 "$C/.args")
cat > "$tmp/README.txt" <<TXT
The embedded default model of ramc (docs/experiments.md, "The embedded default model").

  clip.safetensors     a small CLIP (ViT patch 8 on 64x64, width 128 x 4 layers; text
                       width 64 x 4 layers; embedding 64; the head counts are in the
                       file's metadata), OpenAI tensor names, float16;
                       pre-trained from scratch by \`ramc $clip_args\`
                       on the captions of \`ramc $world_args\` (scripts/experiments.sh)
  vocab.json merges.txt  its tokenizer (the captions' byte-level BPE), found beside the weights
  adapter.safetensors  the RAM adapter of that run's seed $seed (KCOT, SAA, TSS), trained on
                       the 48 labels of seen.txt only, float16
  labels.txt           all labels of the world (seen.txt + unseen.txt, sorted)
  seen.txt unseen.txt  the training labels and the zero-shot ones

Both weight files were converted from the run's float32 files with
\`ramc convert --f16 IN OUT\` (scripts/make_default_model.sh); ramc rounds CLIP weights to
float16 when loading anyway (as the official build_model), so the CLIP is unchanged by
the conversion. Commands that need weights use this model when given none, and say so
on stderr.
TXT
rm -rf "$D.new" && mkdir -p "$D.new" && cp "$tmp"/* "$D.new/" && rm -rf "$D" && mv "$D.new" "$D"
echo "wrote $D ($(du -sh "$D" | cut -f1))" >&2

# Fresh images of the same world: another synth seed (other per-image seeds
# than every image the run trained or evaluated on) with the run's own unseen
# labels, so the labels mean what the adapter learnt.
unseen=$(paste -sd, "$S/unseen.txt")
objects_args=$(echo "$world_args" | grep -o -- '--pretrain-max-objects [0-9]*\|--no-strict-pretrain' | tr '\n' ' ')
F=$tmp/fresh
# shellcheck disable=SC2086 # separate words
"$RAMC" synth --out "$F" --seed 2000 --unseen "$unseen" --pretrain 0 --train 0 --test 400 $objects_args \
    --objects --quiet
rm -rf data/samples.new && mkdir -p data/samples.new
"$PY" - "$F" "$samples" data/samples.new <<'PY'
import json, os, shutil, sys
src, want, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]
unseen = [l.strip() for l in open(os.path.join(src, "unseen.txt")) if l.strip()]
# The first images of the split (in its order, whatever the model makes of
# them) that hold an unseen label: a quarter with two objects, the rest
# busy scenes of 3-5.
few, busy = [], []
for line in open(os.path.join(src, "objects.jsonl")):
    r = json.loads(line)
    if r["split"] != "test_gzsl":
        continue
    names = [o["label"] for o in r["objects"]]
    if not any(n in unseen for n in names):
        continue
    if len(names) == 2:
        few.append((r["image"], names))
    elif 3 <= len(names) <= 5:
        busy.append((r["image"], names))
rows = few[:want // 4] + busy[:want - want // 4]
readme = ["Sample images of the world of the default model (`ramc synth` v2, 64x64): two-object and",
          "busy scenes of 3-5 objects with unlabelled distractors (grey shapes, coloured strokes) on textured",
          "backgrounds, from a fresh test split (synth seed 2000 with the model's unseen labels:",
          "images no model saw; scripts/make_default_model.sh). The file name lists the objects.",
          "Unseen labels (never trained on by the RAM adapter): " + ", ".join(unseen) + ".", ""]
for path, names in rows:
    name = "+".join(n.replace(" ", "-") for n in names) + ".png"
    shutil.copy(os.path.join(src, path), os.path.join(dst, name))
    readme.append(f"{name}\tobjects: {', '.join(names)}\tunseen: {', '.join(n for n in names if n in unseen) or '-'}")
# The world-v1 samples of the earlier default model stay (the tests use them by
# name): the part of the old README from its v1 marker on, and their files.
old = os.path.join(os.path.dirname(dst), "samples", "README.txt")
marker = "== world v1"
kept = []
if os.path.exists(old):
    text = open(old).read()
    if marker in text:
        kept = text[text.index(marker):].rstrip("\n").split("\n")
        for ln in kept[1:]:
            if ln.endswith(".png") or "\t" in ln:
                f = ln.split("\t")[0]
                shutil.copy(os.path.join(os.path.dirname(old), f), os.path.join(dst, f))
open(os.path.join(dst, "README.txt"), "w").write("\n".join(readme + ([""] + kept if kept else [])) + "\n")
print(f"{len(rows)} samples (+ {max(len(kept) - 2, 0)} kept from world v1)", file=sys.stderr)
PY
rm -rf data/samples && mv data/samples.new data/samples

# The recorded values: a fresh 200-image split (synth seed 1000 with the run's
# unseen labels), exactly as tests/cli_default_model.sh makes it.
E=$tmp/eval
# shellcheck disable=SC2086
"$RAMC" synth --out "$E" --seed 1000 --unseen "$unseen" --pretrain 0 --train 0 --test 200 $objects_args --quiet
echo "== the default model on the fresh split (RAM; then plain CLIP, --baseline clip)" >&2
RAMC_DATA_DIR=data "$RAMC" eval --seen-classes "$E/seen.txt" --unseen-classes "$E/unseen.txt" \
    --test-zsl "$E/test_zsl.json" --test-gzsl "$E/test_gzsl.json" --report "$tmp/report.json"
RAMC_DATA_DIR=data "$RAMC" eval --baseline clip --seen-classes "$E/seen.txt" --unseen-classes "$E/unseen.txt" \
    --test-zsl "$E/test_zsl.json" --test-gzsl "$E/test_gzsl.json" --report "$tmp/clip.json"
# The values tests/cli_default_model.sh records (fractions: OF1 at top 3, mAP)
"$PY" - "$tmp/report.json" "$tmp/clip.json" <<'PY'
import json, sys
for path, who in zip(sys.argv[1:], ("RAM", "CLIP")):
    for r in json.load(open(path))["reports"]:
        of1 = next(t["OF1"] for t in r["topk"] if t["k"] == 3)
        print(f"{who} {r['name']}: OF1@3 {of1!r} mAP {r['mAP']!r}")
PY
