#!/usr/bin/env bash
# ramc train / ramc eval through the command line, on the photo fixtures with
# the tiny golden CLIP:
#  - a run, its outputs and a resume;
#  - SIGINT stops with a checkpoint and exit status 130;
#  - kill -9 at random moments, then resuming until done, ends with exactly
#    the checkpoint of an uninterrupted run;
#  - malformed datasets give clear errors naming the file and entry.
set -u
ramc=$1 golden=$2 src=$(cd "$3" && pwd)
fails=0 passes=0
check() { local name=$1; shift; if "$@"; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $name" >&2; fi; }
differs() { ! cmp -s "$1" "$2"; }
tmp=$(mktemp -d); [ -n "${KEEP_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT; echo "tmp=$tmp"
fx=$src/tests/fixtures/images
clip=$golden/tiny-s0/weights.safetensors

# a labelled set: the label is the photo's subject
: > "$tmp/train.tsv"
for f in "$fx"/*.jpg "$fx"/*.png; do
    base=$(basename "$f"); subject=${base%%_*}
    case $subject in astronaut|camera|cat|coffee|rocket) ;; *) continue ;; esac
    other=camera; [ "$subject" = camera ] && other=cat
    printf '%s\t%s\n' "$f" "$subject" >> "$tmp/train.tsv"
    printf '%s\t%s,%s\n' "$f" "$subject" "$other" >> "$tmp/train.tsv"
done
printf 'camera\ncat\ncoffee\n' > "$tmp/seen.txt"
printf 'astronaut\nrocket\n' > "$tmp/unseen.txt"
# evaluation sets keep only their own labels
awk -F'\t' '{split($2,a,","); s=""; for(i in a) if (a[i]=="astronaut"||a[i]=="rocket") s=s (s?",":"") a[i]; if (s) print $1"\t"s}' "$tmp/train.tsv" > "$tmp/zsl.tsv"
cp "$tmp/train.tsv" "$tmp/gzsl.tsv"
awk -F'\t' '{split($2,a,","); s=""; for(i in a) if (a[i]!="astronaut"&&a[i]!="rocket") s=s (s?",":"") a[i]; if (s) print $1"\t"s}' "$tmp/train.tsv" > "$tmp/seen_train.tsv"

train() { # train OUTDIR [extra args...]; exec, so that "train ... &" gives ramc's own pid
    local out=$1; shift
    exec "$ramc" train --clip "$clip" --vision-heads 2 --text-heads 2 --train "$tmp/seen_train.tsv" \
        --seen-classes "$tmp/seen.txt" --output "$out" --set batch_size=4 --set max_epochs=6 \
        --set warmup_epochs=0 --set base_lr=1e-2 --set base_lr_sgd=1e-1 --set eval_period=100 \
        --set workers=1 --quiet "$@"
}

# 1. a plain run and its outputs
(train "$tmp/ref") > "$tmp/out.txt" 2>&1
check "training exits 0" [ $? -eq 0 ]
for f in checkpoint.safetensors adapter.safetensors adapter-ema.safetensors log.jsonl; do
    check "run writes $f" [ -s "$tmp/ref/$f" ]
done
check "log has steps" grep -q '"event":"step"' "$tmp/ref/log.jsonl"
check "no temporary files left" [ -z "$(ls "$tmp/ref" | grep -i tmp)" ]

# 1b. the schedule trap: epochs at the cosine floor are announced on stderr
# and in log.jsonl; the settings above (cosine over 60 epochs) are not
check "a useful schedule gives no warning" bash -c "! grep -q 'learning-rate schedule' '$tmp/out.txt'"
check "a useful schedule logs no warning" bash -c "! grep -q '\"event\":\"warning\"' '$tmp/ref/log.jsonl'"
(train "$tmp/floor" --set max_epochs=2 --set scheduler_max_epochs=2 --max-steps 1) > "$tmp/floor.txt" 2>&1
check "floor schedule warns on stderr" grep -q "runs epochs 2-2 of 2 at its floor" "$tmp/floor.txt"
check "floor schedule warning in log.jsonl" grep -q '"kind":"schedule"' "$tmp/floor/log.jsonl"
(train "$tmp/warm" --set max_epochs=2 --set warmup_epochs=50 --max-steps 1) > "$tmp/warm.txt" 2>&1
check "a long warm-up warns" grep -q "epochs 1-2 run below 10%" "$tmp/warm.txt"

# 1c. augment = 0 and the frozen-prefix cache: the cache changes no bit of the
# result, serves the epochs after the first, and is refused with augmentation
(train "$tmp/noaug" --set augment=0 --set max_epochs=3) > "$tmp/noaug.txt" 2>&1
check "augment = 0 trains" [ $? -eq 0 ]
check "augment = 0 changes the result" differs "$tmp/noaug/adapter.safetensors" "$tmp/ref/adapter.safetensors"
(train "$tmp/cached" --set augment=0 --set max_epochs=3 --set cache_frozen_prefix=1) > "$tmp/cached.txt" 2>&1
check "cache_frozen_prefix trains" [ $? -eq 0 ]
for f in adapter.safetensors adapter-ema.safetensors; do
    check "cache_frozen_prefix gives the same $f" cmp -s "$tmp/noaug/$f" "$tmp/cached/$f"
done
check "cache_frozen_prefix serves epochs 2 and 3" \
    grep -q 'frozen-prefix cache after epoch 3: [0-9]* images held .*steps served from it [1-9]' "$tmp/cached/log.jsonl" "$tmp/cached.txt"
# 1d. --bf16: the frozen vision tower in bf16; a different result from the
# float32 run on the same pixels, recorded in the checkpoint's config so that
# a resume keeps it (closeness to float32: cli_golden_trajectory.sh)
(train "$tmp/bf16" --set augment=0 --set max_epochs=3 --bf16) > "$tmp/bf16.txt" 2>&1
check "--bf16 trains" [ $? -eq 0 ]
check "--bf16 changes the result" differs "$tmp/noaug/adapter.safetensors" "$tmp/bf16/adapter.safetensors"
check "--bf16 is recorded in the checkpoint" grep -aq "bf16 = true" "$tmp/bf16/checkpoint.safetensors"
(train "$tmp/refused" --set cache_frozen_prefix=1) > "$tmp/refused.txt" 2>&1
check "cache_frozen_prefix with augmentation is refused" [ $? -ne 0 ]
check "the refusal says why" grep -q "cache_frozen_prefix = 1 needs augment = 0" "$tmp/refused.txt"

# 2. evaluation of the trained adapter, report file
"$ramc" eval --clip "$clip" --vision-heads 2 --text-heads 2 --adapter "$tmp/ref/adapter.safetensors" \
    --seen-classes "$tmp/seen.txt" --unseen-classes "$tmp/unseen.txt" \
    --test-zsl "$tmp/zsl.tsv" --test-gzsl "$tmp/gzsl.tsv" --batch 8 --report "$tmp/report.json" \
    > "$tmp/eval.txt" 2>&1
check "eval exits 0" [ $? -eq 0 ]
check "eval prints ZSL and GZSL" grep -q "evaluation: gzsl" "$tmp/eval.txt"
check "eval prints mAP" grep -q "^mAP:" "$tmp/eval.txt"
check "report written" grep -q '"reports"' "$tmp/report.json"
# the same evaluation through a label cache, cold then warm: the same metrics
for run in cold warm; do
    "$ramc" eval --clip "$clip" --vision-heads 2 --text-heads 2 --adapter "$tmp/ref/adapter.safetensors" \
        --seen-classes "$tmp/seen.txt" --unseen-classes "$tmp/unseen.txt" --label-cache "$tmp/lc" \
        --test-zsl "$tmp/zsl.tsv" --test-gzsl "$tmp/gzsl.tsv" --batch 8 > "$tmp/eval-$run.txt" 2>&1
    check "eval with a $run label cache exits 0" [ $? -eq 0 ]
    check "eval with a $run label cache gives the same metrics" cmp -s <(grep -E "^(mAP|P|R|F1)" "$tmp/eval.txt") <(grep -E "^(mAP|P|R|F1)" "$tmp/eval-$run.txt")
done
check "eval filled the label cache" [ -n "$(find "$tmp/lc" -name '*.lf')" ]

# 3. SIGINT: checkpoint, status 130, then resume to the same end
(train "$tmp/int" --set max_epochs=400) > "$tmp/int.txt" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/int/log.jsonl" ] && grep -q '"event":"step"' "$tmp/int/log.jsonl" && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
check "SIGINT exits 130 (got $rc)" [ $rc -eq 130 ]
check "SIGINT writes a checkpoint" [ -s "$tmp/int/checkpoint.safetensors" ]
check "SIGINT says how to resume" grep -q "resume with" "$tmp/int.txt"

# 3b. resuming a copy writes beside the copy, never into the original run
mkdir -p "$tmp/copy"; cp "$tmp/int/checkpoint.safetensors" "$tmp/copy/"
cp "$tmp/int/checkpoint.safetensors" "$tmp/int-original.safetensors"
# two steps past the interrupted run's checkpoint (--max-steps counts from the start)
at=$(grep '"event":"checkpoint"' "$tmp/int/log.jsonl" | tail -n 1 | sed -n 's/.*"global_step":\([0-9]*\).*/\1/p')
"$ramc" train --resume "$tmp/copy/checkpoint.safetensors" --vision-heads 2 --text-heads 2 \
    --max-steps $(( ${at:-0} + 2 )) --quiet > "$tmp/copy.txt" 2>&1
check "resumed copy writes its log beside itself" [ -s "$tmp/copy/log.jsonl" ]
check "resumed copy leaves the original checkpoint alone" cmp -s "$tmp/int/checkpoint.safetensors" "$tmp/int-original.safetensors"
check "resumed copy moves its own checkpoint" differs "$tmp/copy/checkpoint.safetensors" "$tmp/int-original.safetensors"
# 3c. something that is not a checkpoint: a clear error, not a crash
"$ramc" train --resume "$clip" --max-steps 4 > "$tmp/notckpt.txt" 2>&1
rc=$?
check "resume from CLIP weights exits 1 (got $rc)" [ $rc -eq 1 ]
check "resume from CLIP weights names the file" grep -q "weights.safetensors: not a ramc training checkpoint" "$tmp/notckpt.txt"

# 4. kill -9 at random moments; resuming until done gives the uninterrupted result
mv "$tmp/ref" "$tmp/ref_done"
kills=0
for attempt in $(seq 6); do
    if [ -s "$tmp/ref/checkpoint.safetensors" ]; then
        (exec "$ramc" train --resume "$tmp/ref/checkpoint.safetensors" --vision-heads 2 --text-heads 2 \
            --quiet) > /dev/null 2>&1 &
    else
        (train "$tmp/ref") > /dev/null 2>&1 &
    fi
    pid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
    wait $pid 2>/dev/null
    rc=$?
    [ $rc -eq 0 ] && break
done
# finish whatever is left
if ! grep -q '"event":"done"' "$tmp/ref/log.jsonl" 2>/dev/null; then
    if [ -s "$tmp/ref/checkpoint.safetensors" ]; then
        "$ramc" train --resume "$tmp/ref/checkpoint.safetensors" --vision-heads 2 --text-heads 2 --quiet > /dev/null 2>&1
    else
        (train "$tmp/ref") > /dev/null 2>&1
    fi
fi
echo "cli_train: killed the training $kills times"
check "killed runs end with the uninterrupted checkpoint" cmp -s "$tmp/ref/checkpoint.safetensors" "$tmp/ref_done/checkpoint.safetensors"
check "killed runs end with the uninterrupted adapter" cmp -s "$tmp/ref/adapter.safetensors" "$tmp/ref_done/adapter.safetensors"
check "no temporary files after kills" [ -z "$(ls "$tmp/ref" | grep -i tmp)" ]

# 5. malformed datasets: clear error naming file and entry, exit 1
printf '{"images": [["a.jpg", ["cat"]], ["b.jpg", "cat"]]}' > "$tmp/bad.json"
(train "$tmp/bad" --train "$tmp/bad.json") > "$tmp/bad.txt" 2>&1
rc=$?
check "bad types exit 1 (got $rc)" [ $rc -eq 1 ]
check "bad types message names the entry" grep -q "bad.json: images\[1\]" "$tmp/bad.txt"
printf '{"images": [["a.jpg", ["cat", "dgo"]]]}' > "$tmp/unknown.json"
(train "$tmp/bad" --train "$tmp/unknown.json") > "$tmp/bad.txt" 2>&1
check "unknown label exit 1" [ $? -eq 1 ]
check "unknown label named" grep -q "unknown label 'dgo'" "$tmp/bad.txt"
printf '{"images": [["a.jpg", []]]}' > "$tmp/empty.json"
(train "$tmp/bad" --train "$tmp/empty.json") > "$tmp/bad.txt" 2>&1
check "empty label list exit 1" [ $? -eq 1 ]
check "empty label list named" grep -q "empty.json: images\[0\]" "$tmp/bad.txt"
printf '{"images": [["a.jpg", ["cat"]' > "$tmp/trunc.json"
(train "$tmp/bad" --train "$tmp/trunc.json") > "$tmp/bad.txt" 2>&1
check "bad JSON exit 1" [ $? -eq 1 ]
check "bad JSON names the file" grep -q "trunc.json" "$tmp/bad.txt"
(train "$tmp/bad" --set no_such_key=1) > "$tmp/bad.txt" 2>&1
check "unknown config key is an error" [ $? -ne 0 ]
"$ramc" train --train x > /dev/null 2>&1
check "missing required options: usage error" [ $? -eq 2 ]

# 6. bad usage exits 2, whichever command and option
"$ramc" train --set max_epochs > /dev/null 2>&1
check "train --set without '=' exits 2" [ $? -eq 2 ]
"$ramc" train --set no_such_key=1 > /dev/null 2>&1
check "train --set with an unknown key exits 2" [ $? -eq 2 ]
"$ramc" eval --set max_epochs > /dev/null 2>&1
check "eval --set without '=' exits 2" [ $? -eq 2 ]
"$ramc" eval --batch 0 > "$tmp/b0.txt" 2>&1
check "eval --batch 0 exits 2" [ $? -eq 2 ]
check "eval --batch 0 says why" grep -q "positive" "$tmp/b0.txt"

echo "cli_train: $passes passed, $fails failed"
[ $fails -eq 0 ]
