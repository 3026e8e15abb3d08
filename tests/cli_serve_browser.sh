#!/usr/bin/env bash
# ramc serve's web page in a real browser: Debian's chromium, headless,
# driven by chromedriver (tests/serve_browser.py speaks its WebDriver HTTP
# protocol). Loads the page, shows errors, uploads a sample image with three
# labels and checks the ranked list and the heat maps. The screenshot is kept
# as a test artifact: serve_page.png in the folder the test runs in (the
# build folder under ctest).
set -u
RAMC=$1 src=$(cd "$3" && pwd)
WORK=$(mktemp -d)
. "$src/tests/lib_cli.sh"
. "$src/tests/lib_serve.sh"
driver_pid=
trap '[ -n "$driver_pid" ] && kill "$driver_pid" 2>/dev/null; kill_servers; rm -rf "$WORK"' EXIT
for tool in /usr/bin/chromium /usr/bin/chromedriver; do
    if [ ! -x "$tool" ]; then
        bad "$tool is missing (scripts/setup.sh installs chromium and chromium-driver)"
        summary cli_serve_browser
        exit 1
    fi
done
image=$src/data/samples/red-heart+yellow-square.png
printf 'plain text, not a picture' > "$WORK/not-a-picture.png"
top=$("$RAMC" predict --threads 1 --labels "red heart,yellow square,green star" --top-k 1 --format tsv "$image" 2>/dev/null | cut -f2)

start_server "$WORK/server.log" --threads 2 || { bad "server start"; summary cli_serve_browser; exit 1; }
# a free port for chromedriver: the system picks one, chromedriver takes it
driver_port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
/usr/bin/chromedriver --port="$driver_port" > "$WORK/driver.log" 2>&1 &
driver_pid=$!
for _ in $(seq 100); do
    curl -s "http://127.0.0.1:$driver_port/status" | grep -q '"ready": *true' && break
    sleep 0.1
done
shot=$PWD/serve_page.png
rm -f "$shot"
if timeout 240 /usr/bin/python3 "$src/tests/serve_browser.py" "$BASE" "$driver_port" "$image" \
    "$WORK/not-a-picture.png" "$shot" "$top" > "$WORK/browser.out" 2>&1; then
    ok
else
    bad "the browser checks: $(grep -v '^ok' "$WORK/browser.out" | head -c 1500)"
fi
cat "$WORK/browser.out"
check "the screenshot was kept: $shot" [ -s "$shot" ]
check "the server logged the page's bad upload" grep -q "not-a-picture.png" "$WORK/server.log"
check "SIGTERM: exit 0" stop_server
summary cli_serve_browser
