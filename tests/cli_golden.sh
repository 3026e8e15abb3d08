#!/usr/bin/env bash
# ramc golden on every shared golden set, and its failure modes:
# a tampered set must fail, broken files must give clean errors.
set -u
ramc=$1 shared=$2
fails=0 passes=0
check() { # check NAME COND...
    local name=$1; shift
    if "$@"; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $name" >&2; fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# 1. every shared set passes, with every tensor compared
sets=0
for dir in "$shared"/golden/*/; do
    [ -f "$dir/outputs.safetensors" ] || continue
    sets=$((sets + 1))
    "$ramc" golden "$dir" > "$tmp/out.txt" 2>&1
    rc=$?
    check "golden $dir exits 0" [ $rc -eq 0 ]
    [ $rc -eq 0 ] || tail -n 30 "$tmp/out.txt" >&2
    check "golden $dir reports no failure" grep -q ", 0 failed" "$tmp/out.txt"
    check "golden $dir compares gradients" grep -q "^train.grad." "$tmp/out.txt"
    check "golden $dir compares Sinkhorn iterations" grep -q "^eval.sinkhorn_iters .* ok" "$tmp/out.txt"
done
check "at least one golden set" [ $sets -gt 0 ]

# 2. a tampered set fails: scale one adapter tensor through a copy made by ramc's own writer
first=$(ls -d "$shared"/golden/*/ | head -n 1)
cp -r "$first" "$tmp/set"
chmod -R u+w "$tmp/set"
python3 - "$tmp/set/adapter.safetensors" <<'PY' 2>/dev/null || true
import json, struct, sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
t = h["temperature_loc"]
o = 8 + n + t["data_offsets"][0]
v = struct.unpack("<f", b[o:o + 4])[0]
b[o:o + 4] = struct.pack("<f", v * 1.01)
open(p, "wb").write(b)
PY
"$ramc" golden "$tmp/set" > "$tmp/out.txt" 2>&1
check "tampered set exits 1" [ $? -eq 1 ]
check "tampered set names failing tensors" grep -q "eval.logits_loc .*FAIL" "$tmp/out.txt"

# 3. broken inputs: clean errors naming the file, exit 1, no signal
head -c 1000 "$first/weights.safetensors" > "$tmp/set/weights.safetensors"
"$ramc" golden "$tmp/set" > "$tmp/out.txt" 2>&1
rc=$?
check "truncated weights exit 1 (got $rc)" [ $rc -eq 1 ]
check "truncated weights message names the file" grep -q "weights.safetensors" "$tmp/out.txt"

"$ramc" golden "$tmp/does-not-exist" > "$tmp/out.txt" 2>&1
check "missing set exits 1" [ $? -eq 1 ]
"$ramc" golden > /dev/null 2>&1
check "no argument is a usage error" [ $? -eq 2 ]
"$ramc" golden --tolerance abc "$first" > /dev/null 2>&1
check "bad tolerance is a usage error" [ $? -eq 2 ]

echo "cli_golden: $passes passed, $fails failed"
[ $fails -eq 0 ]
