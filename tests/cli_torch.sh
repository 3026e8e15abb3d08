#!/usr/bin/env bash
# PyTorch checkpoints through the command line: --clip X.pt, --adapter X.pth
# and ramc convert give the same predictions as the safetensors conversions;
# the legacy format and hostile archives are refused with the file named.
set -u
ramc=$1 golden=$2 src=$(cd "$3" && pwd)
fails=0 passes=0
check() { local name=$1; shift; if "$@"; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $name" >&2; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
F=$src/tests/fixtures/torch
G=$golden/tiny-s0
img=$src/tests/fixtures/images/cat_444.jpg
heads=(--vision-heads 2 --text-heads 2)
labels="cat,dog,car,person,bicycle"

predict() { "$ramc" predict "${heads[@]}" --labels "$labels" --top-k 5 "$@" "$img"; }

for pt in clip_state_dict.pt clip_plain.bin clip_scripted.pt; do
    "$ramc" convert "$F/$pt" "$tmp/$pt.safetensors" > "$tmp/convert.txt" 2>&1
    check "convert $pt exits 0" [ $? -eq 0 ]
    predict --clip "$F/$pt" --adapter "$G/adapter.safetensors" > "$tmp/a.json" 2> "$tmp/a.err"
    check "predict --clip $pt exits 0" [ $? -eq 0 ]
    predict --clip "$tmp/$pt.safetensors" --adapter "$G/adapter.safetensors" > "$tmp/b.json" 2>&1
    check "$pt predicts as its safetensors conversion" cmp -s "$tmp/a.json" "$tmp/b.json"
    check "$pt gives scores" grep -q '"score"' "$tmp/a.json"
done
# an adapter from the official training output (a RAM_Model state dict)
predict --clip "$G/weights.safetensors" --adapter "$F/ram_state_dict.pth" > "$tmp/a.json" 2>&1
check "predict --adapter .pth exits 0" [ $? -eq 0 ]
predict --clip "$G/weights.safetensors" --adapter "$G/adapter.safetensors" > "$tmp/b.json" 2>&1
check ".pth adapter predicts as the safetensors adapter" cmp -s "$tmp/a.json" "$tmp/b.json"
"$ramc" convert "$F/ram_state_dict.pth" "$tmp/ram.safetensors" > /dev/null 2>&1
predict --clip "$G/weights.safetensors" --adapter "$tmp/ram.safetensors" > "$tmp/c.json" 2>&1
check ".pth converted predicts the same" cmp -s "$tmp/a.json" "$tmp/c.json"

# refused, with the file named and nothing written
for bad in legacy.pt hostile_global.pt hostile_deep.pt hostile_memo.pt hostile_missing_storage.pt \
           hostile_view.pt hostile_size.pt hostile_truncated.pt hostile_bomb.pt hostile_huge_storage.pt; do
    "$ramc" convert "$F/$bad" "$tmp/out.safetensors" > "$tmp/err.txt" 2>&1
    rc=$?
    check "convert $bad exits 1 (got $rc)" [ $rc -eq 1 ]
    check "convert $bad names the file" grep -q "$bad" "$tmp/err.txt"
    check "convert $bad writes nothing" [ ! -e "$tmp/out.safetensors" ]
    predict --clip "$F/$bad" > "$tmp/err.txt" 2>&1
    check "predict --clip $bad exits 1" [ $? -eq 1 ]
done
"$ramc" convert "$F/legacy.pt" "$tmp/out.safetensors" > "$tmp/err.txt" 2>&1
check "legacy format says how to convert" grep -q "torch.save(torch.load" "$tmp/err.txt"
"$ramc" convert "$F/hostile_global.pt" "$tmp/out.safetensors" > "$tmp/err.txt" 2>&1
check "a refused global is named" grep -q "'os.system'" "$tmp/err.txt"

echo "cli_torch: $passes passed, $fails failed"
[ $fails -eq 0 ]
