#!/usr/bin/env bash
# Pre-training recipes for the small CLIP of the `ramc synth` world, each
# measured the same way (docs/pretrain.md, "Recipes"):
#   ramc synth (the recipe's world) -> ramc pretrain-clip (the recipe) ->
#   scripts/clip_probe.py (zero-shot top-1 over all 64 labels on 640 held-out
#   single-object images, colour / shape right, seen / unseen labels) and the
#   held-out retrieval of pretrain-clip's metrics.json.
#
#   scripts/pretrain_recipes.sh [--out DIR] [--table] RECIPE...
#   scripts/pretrain_recipes.sh --list
#
# Each finished recipe appends one JSON line to OUT/results.jsonl and to
# RESULTS (default docs/pretrain_recipes.jsonl, the record of every recipe
# measured), with its wall time and the load average, since the machine is
# shared; --table rewrites the recipes table of docs/pretrain.md from RESULTS. A world or a
# model that exists for the same arguments is reused. Environment: RAMC
# (default build/ramc), PY (default /usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
RAMC=${RAMC:-build/ramc}
PY=${PY:-/usr/bin/python3}
out=out/pretrain_recipes table=0 recipes=()
RESULTS=${RESULTS:-docs/pretrain_recipes.jsonl}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# name | world (ramc synth arguments) | pretrain-clip arguments (@WORLD@: the
# world's folder)
recipe_lines() {
    cat <<'EOF'
v1-default|--world v1 --seed 0 --pretrain 20000|--epochs 2 --batch 128 --lr 5e-4
v1-lr2e-3|--world v1 --seed 0 --pretrain 20000|--epochs 8 --batch 128 --lr 2e-3
v2-A|--seed 0 --pretrain 40000|--epochs 4 --batch 128 --lr 2e-3
v2-B-few|--seed 0 --pretrain 40000 --pretrain-max-objects 2|--epochs 4 --batch 128 --lr 1e-3
v2-C-single|--seed 0 --pretrain 40000 --pretrain-max-objects 1|--epochs 3 --batch 128 --lr 1e-3
v2-B-long|--seed 0 --pretrain 40000 --pretrain-max-objects 2|--epochs 12 --batch 128 --lr 1e-3
v2-D-open|--seed 0 --pretrain 100000 --pretrain-max-objects 2 --no-strict-pretrain|--epochs 5 --batch 128 --lr 1e-3
v2-E-labels|--seed 0 --pretrain 100000 --pretrain-max-objects 2 --no-strict-pretrain|--epochs 2 --batch 128 --lr 1e-3 --labels-file @WORLD@/classes_all.txt
v2-F-heads|--seed 0 --pretrain 100000 --pretrain-max-objects 2 --no-strict-pretrain|--epochs 2 --batch 128 --lr 1e-3 --labels-file @WORLD@/classes_all.txt --vision-heads 8 --text-heads 4
v2-G-heads16|--seed 0 --pretrain 100000 --pretrain-max-objects 2 --no-strict-pretrain|--epochs 2 --batch 128 --lr 1e-3 --labels-file @WORLD@/classes_all.txt --vision-heads 16 --text-heads 4
v2-G-b64|--seed 0 --pretrain 100000 --pretrain-max-objects 2 --no-strict-pretrain|--epochs 2 --batch 64 --lr 1e-3 --labels-file @WORLD@/classes_all.txt --vision-heads 8 --text-heads 4
v2-H|--seed 0 --pretrain 100000 --pretrain-max-objects 2 --no-strict-pretrain|--epochs 5 --batch 128 --lr 1e-3 --labels-file @WORLD@/classes_all.txt --vision-heads 8 --text-heads 4
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --table) table=1; shift ;;
        --list) recipe_lines; exit 0 ;;
        -h|--help) sed -n 2,18p "$0"; exit 0 ;;
        -*) echo "pretrain_recipes.sh: unknown option '$1'" >&2; exit 2 ;;
        *) recipes+=("$1"); shift ;;
    esac
done
mkdir -p "$out"

run_recipe() {
    local name=$1 line world pre
    line=$(recipe_lines | grep "^$name|") || { echo "pretrain_recipes.sh: no recipe '$name'" >&2; return 2; }
    world=$(echo "$line" | cut -d'|' -f2)
    pre=$(echo "$line" | cut -d'|' -f3)
    local W=$out/world-$(echo "$world" | tr -c 'A-Za-z0-9.\n-' '_') M=$out/model-$name
    if [ ! -f "$W/manifest.json" ]; then
        echo "== $name: ramc synth $world" >&2
        rm -rf "$W"
        # shellcheck disable=SC2086 # the recipe's arguments are separate words
        "$RAMC" synth --out "$W" $world --train 0 --test 0 --quiet
    fi
    if [ ! -f "$M/clip.safetensors" ] || [ "$(cat "$M/.args" 2>/dev/null)" != "$world | $pre" ]; then
        echo "== $name: ramc pretrain-clip $pre" >&2
        rm -rf "$M"
        local t0 load0
        t0=$(date +%s); load0=$(cut -d' ' -f1 /proc/loadavg)
        # shellcheck disable=SC2086
        "$RAMC" pretrain-clip --data "$W" --out "$M" --seed 0 --workers 2 ${pre//@WORLD@/$W} 2> "$M.log" ||
            { echo "pretrain_recipes.sh: $name failed, see $M.log" >&2; return 1; }
        echo "$world | $pre" > "$M/.args"
        echo "$(( $(date +%s) - t0 )) $load0 $(cut -d' ' -f1 /proc/loadavg)" > "$M/.wall"
    fi
    local wv=v2
    case "$world" in *"--world v1"*) wv=v1 ;; esac
    local seed
    seed=$(echo "$world" | sed -n 's/.*--seed \([0-9]*\).*/\1/p')
    "$PY" scripts/clip_probe.py --ramc "$RAMC" --clip "$M" --world $wv --seed "${seed:-0}" --n 640 \
        --work "$out" --json "$M/probe.json" >/dev/null
    "$PY" - "$name" "$world" "$pre" "$M" >> "$out/results.jsonl" <<'EOF'
import json, sys
name, world, pre, m = sys.argv[1:]
probe = json.load(open(m + "/probe.json"))
metrics = json.load(open(m + "/metrics.json"))
wall, load0, load1 = open(m + "/.wall").read().split()
probe.update(name=name, world_args=world, pretrain_args=pre, wall_s=int(wall),
             load_start=float(load0), load_end=float(load1), steps=metrics["steps"],
             images_per_s=metrics["images_per_s"], final_epoch_loss=metrics["final_epoch_loss"])
print(json.dumps(probe))
EOF
    tail -n 1 "$out/results.jsonl" | tee -a "$RESULTS" >&2
}

for r in ${recipes[@]+"${recipes[@]}"}; do run_recipe "$r"; done
if [ "$table" = 1 ]; then
    "$PY" scripts/pretrain_recipes_table.py --results "$RESULTS" --doc docs/pretrain.md
fi
