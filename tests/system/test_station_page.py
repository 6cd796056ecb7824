"""The operator's page in a real browser, on a daemon inspecting a video with a broker: behind
its login (requests without a password refused), laid out for a panel, a tablet and a phone with
no sideways scroll, accessible by axe-core's rules, a part opened from the review queue and
decided by keyboard (the label on MQTT says which operator), an alarm banner raised and
cleared by the broker going down and coming back, and one raised when the station stops."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.broker import free_port
from tests.support.browser import accessibility_problems, chrome, show_at
from tests.support.mqtt_client import Recorder

PREFIX = "lineside/cell-1"
ANNA, BEN = "correct-horse-battery-staple", "tr0ub4dor-and-3-more"
SCREENS = {"panel": (1920, 1080), "tablet": (1024, 768), "phone": (360, 740)}


def _status(url: str, data: bytes | None = None, headers: dict | None = None) -> int:
    """The HTTP status without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        return opener.open(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def station(tmp_path, broker, start_daemon, parts_video, signed_default):
    """A daemon inspecting a looped video with the default model, keeping every fail and
    review, its page served to two operators; and a recorder of its MQTT topics."""
    operators = tmp_path / "operators"
    operators.write_text(f"# cell 1\nanna: {ANNA}\nben: {BEN}\n")
    port = free_port()
    rec = Recorder(broker.port, f"{PREFIX}/#", "page")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), "loop": True, "fps": 5},
        model={"path": str(signed_default)},
        review={"path": str(tmp_path / "review"), "fail_every": 1},
        ui={"port": port, "accounts_file": str(operators), "refresh_s": 0.3},
    )
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 90, "inspections")
    yield f"http://127.0.0.1:{port}", rec, tmp_path / "review", daemon
    assert daemon.terminate()[0] == 0
    rec.close()


@pytest.fixture
def browser():
    driver = chrome()
    yield driver
    driver.quit()


def _log_in(browser, base: str, password: str) -> WebDriverWait:
    browser.get(f"{base}/")
    assert browser.current_url.endswith("/login")
    browser.find_element(By.ID, "password").send_keys(password)
    browser.find_element(By.ID, "login").click()
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "seq").text.isdigit())
    return wait


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LINESIDE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _overflow(browser) -> str:
    """What reaches past the window sideways: "" when nothing does (no sideways scroll)."""
    return browser.execute_script(
        "const e = document.documentElement, w = e.clientWidth;"
        "if (e.scrollWidth <= w) return '';"
        "const past = [...document.querySelectorAll('body *')]"
        "  .filter(x => x.getBoundingClientRect().right > w + 0.5)"
        "  .map(x => x.tagName + '#' + x.id + '.' + x.className.baseVal + x.className);"
        "return `scrollWidth ${e.scrollWidth} > ${w}: ` + past.slice(0, 8).join(', ');"
    )


def _verdicts_fit(browser) -> list[str]:
    """The verdicts that would not fit their box on this screen (the live one is whichever the
    latest part had): each is drawn in a copy of the box beside it and measured."""
    return browser.execute_script(
        "const box = document.getElementById('verdict-box'), bad = [];"
        "for (const [v, icon] of [['pass', '\\u2713'], ['review', '!'], ['fail', '\\u2715']]) {"
        "  const copy = box.cloneNode(true); copy.removeAttribute('id');"
        "  copy.className = 'verdict-box v-' + v;"
        "  copy.children[0].removeAttribute('id'); copy.children[1].removeAttribute('id');"
        "  copy.children[0].textContent = icon; copy.children[1].textContent = v;"
        "  box.after(copy);"
        "  if (copy.getBoundingClientRect().right > box.parentNode.getBoundingClientRect().right"
        "      || copy.scrollWidth > copy.clientWidth) bad.push(v);"
        "  copy.remove();"
        "}"
        "return bad;"
    )


def _open_from_queue(browser) -> list[int]:
    """Click the queue's first part (the list is re-drawn as parts arrive, so in one script);
    the parts listed, in order."""
    return browser.execute_script(
        "const items = [...document.querySelectorAll('#queue .item')];"
        "items[0].click(); return items.map(b => Number(b.dataset.seq));"
    )


def _bottom(browser, element_id: str) -> float:
    return browser.execute_script(
        f"return document.getElementById('{element_id}').getBoundingClientRect().bottom"
    )


def test_the_login_keeps_everything_behind_a_password(station, browser):
    base, _, _, _ = station
    assert _status(f"{base}/") == 303
    for path in ("/api/state", "/live.jpg", "/events", "/api/review", "/api/part/1"):
        assert _status(f"{base}{path}") == 401, path
    label = json.dumps({"seq": 1, "label": "good"}).encode()
    assert _status(f"{base}/api/label", label, {"Content-Type": "application/json"}) == 401
    assert _status(f"{base}/login", b"password=guess", {}) == 401
    assert _status(f"{base}/api/state", headers={"Authorization": f"Bearer {BEN}"}) == 200
    assert (
        _status(f"{base}/api/state", headers={"Authorization": "Bearer guess-guess-guess"}) == 401
    )
    # Bad requests are answered with what is wrong, and change nothing.
    bearer = {"Authorization": f"Bearer {BEN}", "Content-Type": "application/json"}
    assert _status(f"{base}/api/review?verdict=maybe", headers=bearer) == 400
    long_note = json.dumps({"seq": 1, "label": "good", "note": "x" * 501}).encode()
    assert _status(f"{base}/api/label", long_note, bearer) == 400
    bad_label = json.dumps({"seq": 1, "label": "fine"}).encode()
    assert _status(f"{base}/api/label", bad_label, bearer) == 400
    assert _status(f"{base}/api/part/999999", headers=bearer) == 404
    _log_in(browser, base, ANNA)
    assert browser.find_element(By.ID, "operator").text == "anna"


def test_the_page_fits_a_panel_a_tablet_and_a_phone(station, browser, tmp_path):
    base, _, _, _ = station
    wait = _log_in(browser, base, ANNA)
    shots = _shots(tmp_path)
    for screen, (width, height) in SCREENS.items():
        show_at(browser, width, height)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#queue .item"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#trend path"))
        wait.until(
            lambda d: d.execute_script("return document.getElementById('live').naturalWidth")
        )
        assert not _overflow(browser), f"{screen}: {_overflow(browser)}"
        assert browser.find_element(By.ID, "verdict").text.lower() in ("pass", "review", "fail")
        assert not _verdicts_fit(browser), f"{screen}: verdicts wider than their box"
        if screen == "panel":  # verdict and trend readable without scrolling
            assert _bottom(browser, "verdict-box") <= height
            assert _bottom(browser, "trend") <= height
        # The trend is read by its axes: score ticks, time ticks and both thresholds named.
        labels = browser.execute_script(  # in one script: the trend is re-drawn as parts come
            "return [...document.querySelectorAll('#trend text')].map(t => t.textContent)"
        )
        assert any(t.startswith("fail ") for t in labels), labels
        assert any(t.startswith("review ") for t in labels), labels
        assert any(":" in t for t in labels), f"no time on the axis: {labels}"
        problems = accessibility_problems(browser)
        assert not problems, f"{screen}: {problems}"
        browser.save_screenshot(str(shots / f"station-page-{screen}.png"))

        # The part view, opened from the queue, fits too and passes the same checks.
        _open_from_queue(browser)
        wait.until(lambda d: d.find_element(By.ID, "part").get_attribute("open") is not None)
        wait.until(
            lambda d: d.execute_script("return document.getElementById('part-map').naturalWidth")
        )
        assert not _overflow(browser), f"{screen}, part view: {_overflow(browser)}"
        problems = accessibility_problems(browser)
        assert not problems, f"{screen}, part view: {problems}"
        if screen != "tablet":
            browser.save_screenshot(str(shots / f"station-part-{screen}.png"))
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        wait.until(lambda d: d.find_element(By.ID, "part").get_attribute("open") is None)


def test_a_queue_decided_by_keyboard_says_who_decided(station, browser):
    base, rec, review, _ = station
    wait = _log_in(browser, base, ANNA)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#queue .item")) >= 2)
    first, second = _open_from_queue(browser)[:2]
    wait.until(lambda d: d.find_element(By.ID, "part-h").text.startswith(f"Part {first}"))
    regions = browser.find_elements(By.CSS_SELECTOR, "#regions tbody tr")
    assert regions and "Judged by model" in browser.find_element(By.ID, "part-model").text

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("g")  # good, and on to the next part
    wait.until(lambda d: d.find_element(By.ID, "part-h").text.startswith(f"Part {second}"))
    browser.find_element(By.ID, "note").send_keys("crack at the rim")
    browser.find_element(By.ID, "decide-defective").click()

    def labels() -> dict[int, dict]:
        return {
            (doc := json.loads(m.payload))["seq"]: doc
            for m in rec.on("label")
            if m.topic == f"{PREFIX}/label"
        }

    rec.wait_for(lambda: {first, second} <= set(labels()), 20, "both labels on MQTT")
    assert labels()[first]["label"] == "good" and labels()[first]["by"] == "anna"
    assert labels()[second]["label"] == "defective" and labels()[second]["by"] == "anna"
    assert labels()[second]["note"] == "crack at the rim"
    stored = json.loads((review / f"{second:012d}" / "label.json").read_text())
    assert stored == {**stored, "label": "defective", "by": "anna", "note": "crack at the rim"}

    # The decided list says who decided and when.
    body.send_keys(Keys.ESCAPE)
    browser.find_element(By.CSS_SELECTOR, "#f-decided option[value='yes']").click()
    row = f"#queue .item[data-seq='{second}'] .meta"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    assert "defective by anna at" in browser.find_element(By.CSS_SELECTOR, row).text
    browser.find_element(By.CSS_SELECTOR, "#f-decided option[value='no']").click()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, f"#queue .item[data-seq='{first}']"))


def test_the_heatmap_toggles_and_alarms_raise_and_clear(station, browser, broker, tmp_path):
    base, _, _, daemon = station
    wait = _log_in(browser, base, BEN)
    show_at(browser, *SCREENS["panel"])
    browser.find_element(By.ID, "show-map").click()
    wait.until(lambda d: "map=0" in d.find_element(By.ID, "live").get_attribute("src"))
    wait.until(lambda d: d.execute_script("return document.getElementById('live').naturalWidth"))
    browser.find_element(By.ID, "show-map").click()
    wait.until(lambda d: "map=1" in d.find_element(By.ID, "live").get_attribute("src"))

    assert not browser.find_elements(By.CSS_SELECTOR, "#alarms .banner")
    broker.stop()
    banner = "#alarms .banner.alarm[data-kind='broker']"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, banner))
    text = browser.find_element(By.CSS_SELECTOR, banner).text
    assert "Broker down" in text and "Check:" in text
    assert "bad" in browser.find_element(By.ID, "broker").get_attribute("class")
    assert not accessibility_problems(browser)
    browser.save_screenshot(str(_shots(tmp_path) / "station-alarm-panel.png"))
    broker.start()
    WebDriverWait(browser, 60).until(lambda d: not d.find_elements(By.CSS_SELECTOR, banner))

    # A page that no longer hears from its station says so, rather than look healthy.
    assert not browser.find_elements(By.CSS_SELECTOR, "#stale .banner")
    assert daemon.terminate()[0] == 0
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#stale .banner.alarm"))
    assert "No update from the station" in browser.find_element(By.ID, "stale").text
