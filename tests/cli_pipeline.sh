#!/usr/bin/env bash
# Pipelines: `ramc predict --stdin` (paths on standard input, one JSON line per
# path as soon as it is scored, the model loaded once) and the image path '-'
# (one image file on standard input).
set -u
ramc=$1 golden=$2 src=$(cd "$3" && pwd)
fails=0 passes=0
check() { local name=$1; shift; if "$@"; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $name" >&2; fi; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
L="red star,blue circle,black ring,green heart"
mapfile -t imgs < <(ls "$src"/data/samples/*.png | head -n 3)

# 1. --stdin gives, line for line, what the same paths give as arguments
"$ramc" predict --labels "$L" "${imgs[@]}" > "$tmp/args.jsonl" 2>/dev/null
printf '%s\n' "${imgs[@]}" | "$ramc" predict --stdin --labels "$L" > "$tmp/stdin.jsonl" 2>/dev/null
check "--stdin exits 0" [ $? -eq 0 ]
check "--stdin answers every path" [ "$(wc -l < "$tmp/stdin.jsonl")" -eq 3 ]
check "--stdin results equal the batch results" cmp -s "$tmp/args.jsonl" "$tmp/stdin.jsonl"

# 2. a path that fails: an error line naming it, exit 1, the next path still answered
printf '%s\n%s\n\n%s\n' "${imgs[0]}" "$tmp/missing.png" "${imgs[1]}" |
    "$ramc" predict --stdin --labels "$L" > "$tmp/mixed.jsonl" 2> "$tmp/mixed.err"
check "a failed path exits 1" [ $? -eq 1 ]
check "a failed path gets an error line" grep -q "\"image\":\"$tmp/missing.png\",\"error\"" "$tmp/mixed.jsonl"
check "the error is on stderr too" grep -q "missing.png" "$tmp/mixed.err"
check "blank lines are skipped, later paths answered" [ "$(grep -c '"labels"' "$tmp/mixed.jsonl")" -eq 2 ]

# 3. streaming: the answer to the first path arrives while standard input is still open
coproc P { exec "$ramc" predict --stdin --labels "$L" 2>/dev/null; }
echo "${imgs[0]}" >&"${P[1]}"
line=
read -r -t 60 line <&"${P[0]}"
check "first result arrives before input ends" grep -q "\"image\":\"${imgs[0]}\"" <<< "$line"
echo "${imgs[1]}" >&"${P[1]}"
read -r -t 60 line <&"${P[0]}"
check "second result follows" grep -q "\"image\":\"${imgs[1]}\"" <<< "$line"
exec {P[1]}>&-
wait "$P_PID"
check "closing standard input ends the run with 0" [ $? -eq 0 ]

# 4. '-': one image from standard input scores as the same file does
"$ramc" predict --labels "$L" - < "${imgs[0]}" > "$tmp/dash.jsonl" 2>/dev/null
check "'-' exits 0" [ $? -eq 0 ]
check "'-' scores as the file" [ "$(sed 's/"image":"[^"]*"//' "$tmp/dash.jsonl")" = "$(head -n 1 "$tmp/args.jsonl" | sed 's/"image":"[^"]*"//')" ]
printf 'not an image' | "$ramc" predict --labels "$L" - > /dev/null 2> "$tmp/dash.err"
check "'-' with garbage exits 1" [ $? -eq 1 ]
check "'-' with garbage names standard input" grep -q "standard input" "$tmp/dash.err"

# 5. the label cache: a second run reads every label; four processes filling
# one folder at once all succeed, agree with an uncached run, leave whole entries only
"$ramc" predict --labels "$L" "${imgs[@]}" > "$tmp/nocache.jsonl" 2>/dev/null
pids=()
for k in 1 2 3 4; do
    "$ramc" predict --label-cache "$tmp/lc" --labels "$L" "${imgs[@]}" > "$tmp/lc$k.jsonl" 2>/dev/null &
    pids+=($!)
done
ok=1
for p in "${pids[@]}"; do wait "$p" || ok=0; done
check "four processes sharing a label cache exit 0" [ $ok -eq 1 ]
for k in 1 2 3 4; do check "cache writer $k scores as without a cache" cmp -s "$tmp/lc$k.jsonl" "$tmp/nocache.jsonl"; done
check "one entry per label" [ "$(find "$tmp/lc" -name '*.lf' | wc -l)" -eq 4 ]
check "no temporary entries left" [ -z "$(find "$tmp/lc" -name '.tmp*')" ]
"$ramc" predict --label-cache "$tmp/lc" --labels "$L" "${imgs[@]}" > "$tmp/lc5.jsonl" 2>/dev/null
check "a warm cache scores the same" cmp -s "$tmp/lc5.jsonl" "$tmp/nocache.jsonl"

# 6. usage
"$ramc" predict --stdin --labels "$L" "${imgs[0]}" < /dev/null > /dev/null 2>&1
check "--stdin with path arguments is a usage error" [ $? -eq 2 ]
"$ramc" predict --labels "$L" - - < /dev/null > /dev/null 2>&1
check "'-' twice is a usage error" [ $? -eq 2 ]
"$ramc" predict --stdin --explain "$tmp/maps" --labels "$L" < /dev/null > /dev/null 2>&1
check "--stdin with --explain is a usage error" [ $? -eq 2 ]

echo "cli_pipeline: $passes passed, $fails failed"
[ $fails -eq 0 ]
