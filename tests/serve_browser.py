"""Drives headless Chromium over ramc serve's page, through chromedriver's
W3C WebDriver HTTP protocol (standard library only: CI has no npm or pip).

    serve_browser.py BASE_URL CHROMEDRIVER_PORT IMAGE NOT_AN_IMAGE SCREENSHOT EXPECTED_TOP

Loads the page, checks the errors it shows (no labels; a file that is not
an image), then uploads IMAGE, types three labels (red heart, yellow square, green star), submits, and checks the
ranked list (best first, score bars, EXPECTED_TOP first), a heat map per
label and the heat map shown over the image. Saves a screenshot of the
result at SCREENSHOT. Prints one line per check; exits 1 if any failed.
"""
import base64
import json
import sys
import time
import urllib.error
import urllib.request

base, driver_port, image, not_an_image, screenshot, expected_top = sys.argv[1:7]
driver = f"http://127.0.0.1:{driver_port}"
failures = 0


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(driver + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.loads(resp.read())["value"]
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:500]!r}") from None


def check(name, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))
    failures += 0 if ok else 1


def wait_for(what, fn, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    return None


caps = {"capabilities": {"alwaysMatch": {
    "browserName": "chrome",
    "goog:chromeOptions": {
        "binary": "/usr/bin/chromium",
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1100,860", "--no-first-run", "--disable-extensions"],
    }}}}
session = call("POST", "/session", caps)["sessionId"]
S = f"/session/{session}"


def find(css):
    # a web element reference: {"element-6066-11e4-a23c-...": id}, one key
    ref = call("POST", f"{S}/element", {"using": "css selector", "value": css})
    return next(iter(ref.values()))


def run(script, *args):
    return call("POST", f"{S}/execute/sync", {"script": script, "args": list(args)})


try:
    call("POST", f"{S}/url", {"url": base + "/"})
    check("the page loads", run("return document.title") .startswith("ramc"))
    model_line = wait_for("model line", lambda: run(
        "const t = document.getElementById('model-line').textContent; return t.includes('patches') ? t : null"))
    check("the page shows the loaded model", bool(model_line), model_line or "")
    options = run("return [...document.querySelectorAll('#vocabulary option')].map(o => o.value)")
    check("the stored vocabularies are offered", "default" in options, str(options))

    # an error the page finds itself: no labels
    call("POST", f"{S}/element/{find('#file')}/value", {"text": image})
    call("POST", f"{S}/element/{find('#submit')}/click", {})
    err = run("const e = document.getElementById('error'); return e.offsetParent ? e.textContent : ''")
    check("an empty label list is shown as an error", "label" in err, err)

    # an error the server finds: not an image, named by the server's message
    call("POST", f"{S}/element/{find('#file')}/value", {"text": not_an_image})
    call("POST", f"{S}/element/{find('#labels')}/value", {"text": "red heart\nyellow square\ngreen star"})
    call("POST", f"{S}/element/{find('#submit')}/click", {})
    err = wait_for("server error", lambda: run(
        "const e = document.getElementById('error'); return e.offsetParent ? e.textContent : ''"))
    check("the server's error is shown, naming the file", bool(err) and "not-a-picture.png" in err and "400" in err,
          err or "nothing shown")

    # the real thing: the sample image, three labels
    call("POST", f"{S}/element/{find('#file')}/value", {"text": image})
    call("POST", f"{S}/element/{find('#submit')}/click", {})
    rows = wait_for("results", lambda: run(
        "const r = [...document.querySelectorAll('#results li.result')];"
        "return r.length ? r.map(li => [li.querySelector('.name').textContent,"
        " parseFloat(li.querySelector('.score').textContent),"
        " li.querySelector('.bar span').style.width,"
        " (li.querySelector('img.heatmap') || {}).src || '']) : null"))
    check("the ranked list appears", bool(rows), "no results")
    rows = rows or []
    check("three labels are listed", len(rows) == 3, str([r[0] for r in rows]))
    scores = [r[1] for r in rows]
    check("best first", scores == sorted(scores, reverse=True), str(scores))
    check("the top label is ramc predict's", bool(rows) and rows[0][0].endswith(expected_top),
          f"{rows[0][0] if rows else None} vs {expected_top}")
    check("score bars: each as long as its score over the best",
          bool(rows) and all(abs(float(r[2].rstrip("%")) - 100 * r[1] / rows[0][1]) < 0.2 for r in rows),
          str([(r[1], r[2]) for r in rows]))
    check("every label has a heat-map thumbnail",
          bool(rows) and all(r[3].startswith("data:image/png;base64,") for r in rows))
    shown = run("const v = document.getElementById('view');"
                "return [v.src.slice(0, 22), v.naturalWidth, v.naturalHeight, v.complete]")
    check("the first label's heat map is shown over the image",
          shown[0] == "data:image/png;base64," and shown[1] > 0 and shown[3], str(shown))
    err = run("const e = document.getElementById('error'); return e.offsetParent ? e.textContent : ''")
    check("no error is shown after success", err == "", err)
    # a click on another label shows its own map
    second = run("const li = document.querySelectorAll('#results li.result')[1]; li.click();"
                 "return [li.classList.contains('selected'), document.getElementById('view').src ==="
                 " li.querySelector('img.heatmap').src]")
    check("clicking a label shows its heat map", second == [True, True], str(second))
    run("document.querySelectorAll('#results li.result')[0].click()")
    time.sleep(0.3)
    png = base64.b64decode(call("GET", f"{S}/screenshot"))
    with open(screenshot, "wb") as f:
        f.write(png)
    check("the screenshot is a PNG", png[:8] == b"\x89PNG\r\n\x1a\n")
finally:
    call("DELETE", S)

print(f"browser: {failures} failed")
sys.exit(1 if failures else 0)
