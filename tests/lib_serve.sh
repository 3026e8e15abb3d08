# Helpers of the ramc serve tests (cli_serve.sh, cli_serve_browser.sh).
# Source after lib_cli.sh, with RAMC and WORK set.
#   start_server LOG ARGS...  ramc serve --port 0 ARGS in the background; sets
#                             SERVER_PID, PORT and BASE (http://127.0.0.1:PORT)
#   stop_server               SIGTERM, wait; returns the server's exit status
#   http NAME ARGS...         curl ARGS; body in $WORK/NAME.body, headers in
#                             $WORK/NAME.head, prints the status code
#   json FILE EXPR            the Python expression EXPR on the JSON in FILE (as j)
SERVER_PIDS=()
start_server() {
    local log=$1
    shift
    "$RAMC" serve --port 0 "$@" 2>"$log" &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    PORT=
    # the model loads first (seconds under the sanitizers)
    for _ in $(seq 1200); do
        PORT=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\)/.*|\1|p' "$log" 2>/dev/null)
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$PORT" ]; then
        echo "ramc serve did not start: $(head -c 600 "$log")" >&2
        return 1
    fi
    BASE=http://127.0.0.1:$PORT
}
stop_server() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID"
}
# Whatever is still running when the test ends (a failed check) is stopped.
kill_servers() {
    local p
    for p in ${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}; do kill -KILL "$p" 2>/dev/null; done
}
http() {
    local name=$1
    shift
    curl -s -S --max-time 120 -o "$WORK/$name.body" -D "$WORK/$name.head" -w '%{http_code}' "$@"
}
json() {
    /usr/bin/python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(v if not isinstance(v, (dict, list)) else json.dumps(v, sort_keys=True))' "$1" "$2"
}
