#!/usr/bin/env bash
# ramc serve's HTTP API (docs/serve.md), on the embedded default model, each
# server on an ephemeral port: answers equal to `ramc predict --format json`,
# stored vocabularies, heat maps, hostile requests (400/413 with a JSON error
# naming the problem, and the server still up), the bearer token, the
# bounded queue (503 + Retry-After), a bounded load test (4 clients x 200
# requests, 0 errors, p50/p99 printed) and SIGTERM draining a request under
# way, then exiting 0 (under ASan: also without leaks).
set -u
RAMC=$1 src=$(cd "$3" && pwd)
LOAD=$(dirname "$RAMC")/serve_load
WORK=$(mktemp -d)
. "$src/tests/lib_cli.sh"
. "$src/tests/lib_serve.sh"
trap 'kill_servers; rm -rf "$WORK"' EXIT
samples=$src/data/samples
img1=$samples/red-heart+yellow-square.png img2=$samples/yellow-star+blue-cross+blue-square.png
L3=$'red heart\nyellow square\nblue circle'

# The scores of `ramc predict` on one thread (the server's workers run one
# thread each; another count may move the last bits of the products).
expected() { # IMAGE LABELS-CSV [predict flags]: predict's object, with the image's file name
    local image=$1 labels=$2
    shift 2
    "$RAMC" predict --threads 1 --labels "$labels" "$@" "$image" 2>/dev/null |
        /usr/bin/python3 -c 'import json, sys, os
o = json.loads(sys.stdin.readline()); o["image"] = os.path.basename(o["image"])
print(json.dumps(o, sort_keys=True))'
}
result() { json "$1" "j['results'][$2]"; } # FILE INDEX: one image's object

start_server "$WORK/server.log" --threads 2 || { bad "server start"; summary cli_serve; exit 1; }

# ------------------------------------------------------------ the API
check "GET /healthz is 200" [ "$(http health "$BASE/healthz")" = 200 ]
check "healthz says ok" [ "$(json "$WORK/health.body" "j['status']")" = ok ]
check "GET /v1/model is 200" [ "$(http model "$BASE/v1/model")" = 200 ]
check "/v1/model names the version" [ "$(json "$WORK/model.body" "j['version']")" = "$("$RAMC" --version | head -n 1 | cut -d' ' -f2)" ]
check "/v1/model names the weights" grep -q 'data/default/clip.safetensors' "$WORK/model.body"
check "/v1/model lists the default vocabulary (64 labels)" \
    [ "$(json "$WORK/model.body" "[v['labels'] for v in j['vocabularies'] if v['id'] == 'default'][0]")" = 64 ]
check "/v1/model says the label cache is off" [ "$(json "$WORK/model.body" "j['label_cache']['enabled']")" = False ]
check "GET / is the page" [ "$(http page "$BASE/")" = 200 ]
check "the page is HTML from the binary" grep -q '<title>ramc' "$WORK/page.body"
check "the page loads nothing from elsewhere" bash -c "! grep -Eq '(src|href)=\"(https?:)?//' '$WORK/page.body'"
check "the page is served with a restrictive CSP" grep -qi "content-security-policy: default-src 'none'" "$WORK/page.head"

# multipart: the same object as ramc predict --format json, for each image
check "multipart predict is 200" [ "$(http mp -F "image=@$img1" -F "labels=$L3" "$BASE/v1/predict")" = 200 ]
check "multipart predict = ramc predict" [ "$(result "$WORK/mp.body" 0)" = "$(expected "$img1" "red heart,yellow square,blue circle")" ]
check "two images: two results" [ "$(http two -F "image=@$img1" -F "image=@$img2" -F "labels=$L3" -F top_k=2 "$BASE/v1/predict")" = 200 ]
check "two images: the second = ramc predict" [ "$(result "$WORK/two.body" 1)" = "$(expected "$img2" "red heart,yellow square,blue circle" --top-k 2)" ]
check "two images: the first = ramc predict" [ "$(result "$WORK/two.body" 0)" = "$(expected "$img1" "red heart,yellow square,blue circle" --top-k 2)" ]
check "a JSON list of labels = lines" [ "$(http jl -F "image=@$img1" -F 'labels=["red heart","yellow square","blue circle"]' "$BASE/v1/predict")" = 200 ]
check "a JSON list of labels gives the same answer" cmp -s "$WORK/mp.body" "$WORK/jl.body"

# JSON with base64 images
b64=$(base64 -w0 "$img1")
printf '{"images":[{"name":"red-heart+yellow-square.png","data":"%s"}],"labels":["red heart","yellow square","blue circle"]}' "$b64" > "$WORK/req.json"
check "JSON predict is 200" [ "$(http js -H 'Content-Type: application/json' --data-binary "@$WORK/req.json" "$BASE/v1/predict")" = 200 ]
check "JSON predict = multipart predict" cmp -s "$WORK/mp.body" "$WORK/js.body"
printf '{"images":["data:image/png;base64,%s"],"vocabulary":"default","top_k":0,"threshold":0.02}' "$b64" > "$WORK/req2.json"
check "a data URL, threshold alone (every label above it)" [ "$(http js2 -H 'Content-Type: application/json' --data-binary "@$WORK/req2.json" "$BASE/v1/predict")" = 200 ]
check "... = ramc predict --labels-file --threshold" [ "$(json "$WORK/js2.body" "j['results'][0]['labels']")" = \
    "$("$RAMC" predict --threads 1 --labels-file "$src/data/default/labels.txt" --threshold 0.02 "$img1" 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())["labels"], sort_keys=True))')" ]
check "... and named 'image 1'" [ "$(json "$WORK/js2.body" "j['results'][0]['image']")" = "image 1" ]

# score=clip: the CLIP baseline, as predict --baseline clip
check "score=clip is 200" [ "$(http clip -F "image=@$img1" -F "labels=$L3" -F score=clip "$BASE/v1/predict")" = 200 ]
check "score=clip = ramc predict --baseline clip" [ "$(result "$WORK/clip.body" 0)" = "$(expected "$img1" "red heart,yellow square,blue circle" --baseline clip)" ]
# score=independent: each label's own score, as predict --score independent
check "score=independent is 200" [ "$(http indep -F "image=@$img1" -F "labels=$L3" -F score=independent "$BASE/v1/predict")" = 200 ]
check "score=independent = ramc predict --score independent" [ "$(result "$WORK/indep.body" 0)" = "$(expected "$img1" "red heart,yellow square,blue circle" --score independent)" ]
check "... and says so" [ "$(json "$WORK/indep.body" "j['results'][0]['score_type']")" = independent ]

# vocabularies: an id, the same for the same labels, usable later
check "POST /v1/labels is 200" [ "$(http voc -H 'Content-Type: application/json' -d '{"labels":["red heart","yellow square","blue circle"]}' "$BASE/v1/labels")" = 200 ]
vid=$(json "$WORK/voc.body" "j['id']")
check "the vocabulary has 3 labels" [ "$(json "$WORK/voc.body" "j['labels']")" = 3 ]
check "the same labels in a predict request name the same vocabulary" [ "$(json "$WORK/mp.body" "j['vocabulary']")" = "$vid" ]
check "predict with the vocabulary id is 200" [ "$(http byid -F "image=@$img1" -F "vocabulary=$vid" "$BASE/v1/predict")" = 200 ]
check "... and scores as the labels did" cmp -s "$WORK/mp.body" "$WORK/byid.body"
http model2 "$BASE/v1/model" > /dev/null
check "/v1/model lists it" grep -q "\"id\":\"$vid\"" "$WORK/model2.body"
check "a vocabulary from a form with a template" [ "$(http voc2 -F $'labels=red heart\nblue circle' -F 'template=a drawing of a {}' "$BASE/v1/labels")" = 200 ]
check "... is another vocabulary" [ "$(json "$WORK/voc2.body" "j['id']")" != "$vid" ]

# explain: base64 PNG heat maps, the image's aspect ratio kept (long side 384)
check "explain is 200" [ "$(http ex -F "image=@$img1" -F "vocabulary=default" -F top_k=3 -F explain=1 "$BASE/v1/predict")" = 200 ]
check "explain: a heat map per shown label and the LPD map" \
    [ "$(json "$WORK/ex.body" "sum('heatmap_png' in l for l in j['results'][0]['labels']) + ('lpd_png' in j['results'][0])")" = 4 ]
check "explain: the heat maps are PNG pictures the size of the image (64x64 -> 384x384)" \
    [ "$(json "$WORK/ex.body" "[(lambda b: (b[:8] == b'\\x89PNG\\r\\n\\x1a\\n', int.from_bytes(b[16:20], 'big'), int.from_bytes(b[20:24], 'big')))(__import__('base64').b64decode(l['heatmap_png'])) for l in j['results'][0]['labels']]")" \
      = '[[true, 384, 384], [true, 384, 384], [true, 384, 384]]' ]
check "explain: the maps differ between labels" \
    [ "$(json "$WORK/ex.body" "len({l['heatmap_png'] for l in j['results'][0]['labels']})")" = 3 ]
check "explain: the ranking is predict's" [ "$(json "$WORK/ex.body" "[l['label'] for l in j['results'][0]['labels']]")" = \
    "$("$RAMC" predict --threads 1 --labels-file "$src/data/default/labels.txt" --top-k 3 "$img1" 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.dumps([l["label"] for l in json.loads(sys.stdin.read())["labels"]]))')" ]

# ------------------------------------------------------------ hostile requests
# each: the status, and a JSON error that names the problem
hostile() { # NAME STATUS PATTERN CURL-ARGS...
    local name=$1 want=$2 pattern=$3
    shift 3
    local got
    got=$(http "$name" "$@")
    if [ "$got" != "$want" ]; then
        bad "$name: status $got, want $want: $(head -c 300 "$WORK/$name.body")"
    elif ! json "$WORK/$name.body" "j['error']" 2>/dev/null | grep -qi -- "$pattern"; then
        bad "$name: the error does not say '$pattern': $(head -c 300 "$WORK/$name.body")"
    else
        ok
    fi
}
printf 'this is not a picture' > "$WORK/text.png"
head -c 300 "$img1" > "$WORK/truncated.png"
hostile not_an_image 400 "notes.png" -F "image=@$WORK/text.png;filename=notes.png" -F "labels=$L3" "$BASE/v1/predict"
hostile truncated_png 400 "cut.png" -F "image=@$WORK/truncated.png;filename=cut.png" -F "labels=$L3" "$BASE/v1/predict"
hostile bad_json 400 "invalid JSON near byte" -H 'Content-Type: application/json' -d '{"images":["AAAA"], "labels":' "$BASE/v1/predict"
hostile json_not_object 400 "not an object" -H 'Content-Type: application/json' -d '[1,2]' "$BASE/v1/predict"
hostile bad_base64 400 "invalid base64 at character 3" -H 'Content-Type: application/json' -d '{"images":["AAA*"],"vocabulary":"default"}' "$BASE/v1/predict"
hostile empty_labels 400 "no label names" -F "image=@$img1" -F $'labels=\n \n' "$BASE/v1/predict"
hostile empty_label_in_list 400 "label 2 is empty" -F "image=@$img1" -F 'labels=["a",""," b"]' "$BASE/v1/predict"
hostile duplicate_labels 400 "duplicate" -F "image=@$img1" -F $'labels=cat\ncat' "$BASE/v1/predict"
hostile invalid_utf8_label 400 "UTF-8" -F "image=@$img1" -F "labels=$(printf 'ok\n\xff\xfe')" "$BASE/v1/predict"
hostile unknown_vocabulary 400 "unknown vocabulary id 'nope'" -F "image=@$img1" -F vocabulary=nope "$BASE/v1/predict"
hostile labels_and_vocabulary 400 "exactly one of" -F "image=@$img1" -F vocabulary=default -F "labels=$L3" "$BASE/v1/predict"
hostile no_image 400 "no image" -F "labels=$L3" "$BASE/v1/predict"
hostile empty_image 400 "empty" -F "image=@/dev/null;filename=nothing.png" -F "labels=$L3" "$BASE/v1/predict"
hostile bad_top_k 400 "top_k" -F "image=@$img1" -F "labels=$L3" -F top_k=many "$BASE/v1/predict"
hostile bad_threshold 400 "threshold" -F "image=@$img1" -F "labels=$L3" -F threshold=2 "$BASE/v1/predict"
hostile bad_score 400 "score" -F "image=@$img1" -F "labels=$L3" -F score=best "$BASE/v1/predict"
hostile explain_clip 400 "explain" -F "image=@$img1" -F "labels=$L3" -F score=clip -F explain=1 "$BASE/v1/predict"
hostile unknown_field 400 "unknown field 'lables'" -F "image=@$img1" -F "lables=$L3" "$BASE/v1/predict"
hostile long_label 413 "label 1 is 2000 bytes" -F "image=@$img1" -F "labels=$(head -c 2000 /dev/zero | tr '\0' x)" "$BASE/v1/predict"
hostile bad_template 400 "template" -F "labels=$L3" -F "template=no placeholder" "$BASE/v1/labels"
hostile labels_with_image 400 "no files" -F "image=@$img1" -F "labels=$L3" "$BASE/v1/labels"
hostile wrong_type 415 "multipart/form-data" -H 'Content-Type: text/plain' -d 'hello' "$BASE/v1/predict"
hostile wrong_method 405 "POST" "$BASE/v1/predict"
hostile post_to_model 405 "GET" -X POST -d x "$BASE/v1/model"
hostile no_such_path 404 "no such path" "$BASE/v2/predict"
too_many=(); for i in $(seq 17); do too_many+=(-F "image=@$img1"); done
hostile too_many_images 413 "more than 16 images" "${too_many[@]}" -F vocabulary=default "$BASE/v1/predict"
# the decoder's own bounds, unchanged: a bomb is refused before pixel memory
hostile image_bomb 413 "exceeds the limit" -F "image=@$src/tests/hostile/image/bomb_100000.png" -F "labels=$L3" "$BASE/v1/predict"
# every hostile image of the command-line tests: refused with 400 or 413, never a crash
for f in "$src"/tests/hostile/image/*; do
    case $(basename "$f") in valid_*|scan_short_16k.jpg) continue ;; esac # the latter decodes 768 MiB: cli_hostile has it
    got=$(http hi -F "image=@$f" -F "labels=$L3" "$BASE/v1/predict")
    if [ "$got" = 400 ] || [ "$got" = 413 ]; then ok; else bad "hostile image $(basename "$f"): status $got"; fi
done
# a client that sends half its upload and hangs up, and one that sends garbage
head -c 2000 "$img1" > "$WORK/half"
{ printf 'POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'; cat "$WORK/half"; } |
    curl -s --max-time 2 "telnet://127.0.0.1:$PORT" > /dev/null 2>&1
printf 'GARBAGE / HTTP/9.9\r\n\r\n\x00\x01\x02' | curl -s --max-time 2 "telnet://127.0.0.1:$PORT" > /dev/null 2>&1
check "the server is still up after the hostile requests" [ "$(http health2 "$BASE/healthz")" = 200 ]
check "and still answers predictions" [ "$(http mp2 -F "image=@$img1" -F "labels=$L3" "$BASE/v1/predict")" = 200 ]
check "... the same as before" cmp -s "$WORK/mp.body" "$WORK/mp2.body"

# ------------------------------------------------------------ load
# 4 clients x 200 requests (one image, the 64 default labels), 0 errors
printf '{"images":["%s"],"vocabulary":"default","top_k":5}' "$b64" > "$WORK/load.json"
requests=200
if "$LOAD" --port "$PORT" --body "$WORK/load.json" --clients 4 --requests $requests > "$WORK/load.out" 2>&1; then ok; else bad "load: $(cat "$WORK/load.out")"; fi
echo "load test (4 clients x $requests requests, 2 workers): $(head -n 2 "$WORK/load.out" | tr '\n' ' ')"
check "load: 800 answers, all 200" grep -q "statuses=200:800$" "$WORK/load.out"
check "SIGTERM: the server exits 0" stop_server

# ------------------------------------------------------------ limits of the command line
start_server "$WORK/small.log" --threads 1 --queue 1 --max-body 1 --max-labels 3 --max-vocabularies 2 || bad "small server start"
head -c 1500000 /dev/urandom > "$WORK/big.bin"
hostile body_too_large 413 "more than the server's limit" -F "image=@$WORK/big.bin" -F "labels=$L3" "$BASE/v1/predict"
hostile body_too_large_chunked 413 "limit" -H 'Transfer-Encoding: chunked' -F "image=@$WORK/big.bin" -F "labels=$L3" "$BASE/v1/predict"
hostile too_many_labels 413 "more than 3 labels" -F "image=@$img1" -F $'labels=a\nb\nc\nd' "$BASE/v1/predict"
# two vocabularies at most, "default" (pinned) one of them: a new one pushes the last out
http va -F $'labels=red heart\nyellow square' "$BASE/v1/labels" > /dev/null
http vb -F $'labels=green star\nblue cross' "$BASE/v1/labels" > /dev/null
check "a full vocabulary store takes a new set" [ "$(http vb2 -F "image=@$img1" -F "vocabulary=$(json "$WORK/vb.body" "j['id']")" "$BASE/v1/predict")" = 200 ]
hostile evicted_vocabulary 400 "unknown vocabulary id '$(json "$WORK/va.body" "j['id']")'" -F "image=@$img1" -F "vocabulary=$(json "$WORK/va.body" "j['id']")" "$BASE/v1/predict"
check "the pinned default stays" [ "$(http vd -F "image=@$img1" -F vocabulary=default "$BASE/v1/predict")" = 200 ]
# one worker, one place in the queue, 8 clients sending 16 images each at
# once: answered or turned away at once (503), nothing else
heavy=(); for i in $(seq 16); do heavy+=("{\"name\":\"i$i\",\"data\":\"$b64\"}"); done
(IFS=,; printf '{"images":[%s],"labels":["red heart","yellow square","blue circle"]}' "${heavy[*]}") > "$WORK/busy.json"
# the same with every heat map: long enough to send SIGTERM while it runs
(IFS=,; printf '{"images":[%s],"labels":["red heart","yellow square","blue circle"],"explain":true,"top_k":0}' "${heavy[*]}") > "$WORK/heavy.json"
"$LOAD" --port "$PORT" --body "$WORK/busy.json" --clients 8 --requests 3 > "$WORK/busy.out" 2>&1
check "overload: 200 or 503, nothing else" grep -Eq "statuses=200:[0-9]+(,503:[0-9]+)?$" "$WORK/busy.out"
# Deterministically: one heavy request (16 images with every heat map: seconds)
# on the only worker, a second one in the only place in the queue; a third is
# turned away with 503 + Retry-After. Then SIGTERM: both accepted requests are
# still answered, and the server exits 0.
wait_health() { # PATTERN: until /healthz matches it (60 s at most)
    for _ in $(seq 600); do
        curl -s "$BASE/healthz" | grep -Eq "$1" && return 0
        sleep 0.1
    done
    return 1
}
http drain1 -H 'Content-Type: application/json' --data-binary "@$WORK/heavy.json" "$BASE/v1/predict" > "$WORK/drain1.code" &
pid1=$!
# running: in flight besides the health check itself, nothing waiting
check "a heavy request runs" wait_health '"queued":0,"in_flight":2'
http drain2 -H 'Content-Type: application/json' --data-binary "@$WORK/heavy.json" "$BASE/v1/predict" > "$WORK/drain2.code" &
pid2=$!
check "a second one waits in the queue" wait_health '"queued":1'
check "a third gets 503" [ "$(http busy -H 'Content-Type: application/json' --data-binary "@$WORK/busy.json" "$BASE/v1/predict")" = 503 ]
check "503 says to retry after a second" grep -qi '^Retry-After: 1' "$WORK/busy.head"
check "503 says the server is busy" grep -q 'busy' "$WORK/busy.body"
stop_server
check "SIGTERM with requests under way and queued: exit 0" [ $? -eq 0 ]
wait "$pid1" "$pid2"
check "the request under way was answered 200" [ "$(cat "$WORK/drain1.code")" = 200 ]
check "... with all 16 results" [ "$(json "$WORK/drain1.body" "len(j['results'])")" = 16 ]
check "the queued request was answered 200 too" [ "$(cat "$WORK/drain2.code")" = 200 ]
check "... with its heat maps" [ "$(json "$WORK/drain2.body" "sum('lpd_png' in r for r in j['results'])")" = 16 ]
check "the server said it was finishing" grep -q "SIGTERM: finishing" "$WORK/small.log"
check "after it, nothing listens" bash -c "! curl -s --max-time 5 '$BASE/healthz' > /dev/null"

# ------------------------------------------------------------ the token, the label cache
printf 's3cret-token\n' > "$WORK/token"
chmod 600 "$WORK/token"
printf '# my labels\nred heart\n\ngreen star\nyellow square\n' > "$WORK/mine.txt"
start_server "$WORK/token.log" --threads 1 --timeout 1 --token-file "$WORK/token" --label-cache "$WORK/cache" \
    --labels-file "$WORK/mine.txt" || bad "token server start"
hostile no_token 401 "Bearer" -F "image=@$img1" -F "labels=$L3" "$BASE/v1/predict"
hostile wrong_token 401 "Bearer" -H 'Authorization: Bearer s3cret-tokeN' -F "image=@$img1" -F "labels=$L3" "$BASE/v1/predict"
hostile token_prefix 401 "Bearer" -H 'Authorization: Bearer s3cret' "$BASE/v1/model"
check "401 asks for a bearer token" grep -qi '^WWW-Authenticate: Bearer' "$WORK/no_token.head"
check "the right token: 200" [ "$(http tok -H 'Authorization: Bearer s3cret-token' -F "image=@$img1" -F "labels=$L3" "$BASE/v1/predict")" = 200 ]
check "... the same answer" [ "$(result "$WORK/tok.body" 0)" = "$(result "$WORK/mp.body" 0)" ]
check "/healthz needs no token" [ "$(http h3 "$BASE/healthz")" = 200 ]
check "the page needs no token (it asks for one)" [ "$(http p3 "$BASE/")" = 200 ]
http m3 -H 'Authorization: Bearer s3cret-token' "$BASE/v1/model" > /dev/null
check "--labels-file is the default vocabulary" [ "$(json "$WORK/m3.body" "[v['labels'] for v in j['vocabularies'] if v['id'] == 'default']")" = "[3]" ]
check "/v1/model reports the label cache" [ "$(json "$WORK/m3.body" "j['label_cache']['dir']")" = "$WORK/cache" ]
check "the label cache was filled" [ "$(ls "$WORK/cache"/*/ 2>/dev/null | wc -l)" -ge 3 ]
# --timeout 1: a client that stops halfway through its headers is cut off
check "an idle connection is closed after --timeout" /usr/bin/python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\n")
t = time.time(); s.settimeout(20)
closed = s.recv(1000) == b""
sys.exit(0 if closed and time.time() - t < 10 else 1)' "$PORT"
# ... and a request that waits longer than --timeout for the worker gets 503:
# one request with 16 images x 17 heat maps (seconds) holds the only worker
many=$(printf '"l%d",' $(seq 16))
sed "s/\"labels\":\[[^]]*\]/\"labels\":[$many\"red heart\"]/" "$WORK/heavy.json" > "$WORK/heavier.json"
auth=(-H 'Authorization: Bearer s3cret-token' -H 'Content-Type: application/json')
http slow "${auth[@]}" --data-binary "@$WORK/heavier.json" "$BASE/v1/predict" > "$WORK/slow.code" &
slow_pid=$!
check "the slow request runs" wait_health '"queued":0,"in_flight":2'
hostile queue_timeout 503 "timed out after" "${auth[@]}" --data-binary "@$WORK/req.json" "$BASE/v1/predict"
wait "$slow_pid"
check "the slow request itself is answered" [ "$(cat "$WORK/slow.code")" = 200 ]
check "... with heat maps for its first 16 labels only" [ "$(json "$WORK/slow.body" "len([l for l in j['results'][0]['labels'] if 'heatmap_png' in l])")" = 16 ]
check "SIGTERM: exit 0" stop_server
check "a token file without a token is refused" bash -c "printf '\n' > '$WORK/empty'; ! '$RAMC' serve --port 0 --token-file '$WORK/empty' 2> '$WORK/e.err' && grep -q 'no token' '$WORK/e.err'"
check "a host that is not an address is refused" bash -c "! '$RAMC' serve --port $PORT --host 999.1.1.1 2> '$WORK/h.err' && grep -q 'not a numeric' '$WORK/h.err'"
check "a bad --labels-file is refused, named" bash -c "printf 'a\na\n' > '$WORK/dup.txt'; ! '$RAMC' serve --port 0 --labels-file '$WORK/dup.txt' 2> '$WORK/d.err' && grep -q 'dup.txt' '$WORK/d.err'"
run_ramc serve 2 --port 70000
run_ramc serve 2 --bogus

summary cli_serve
