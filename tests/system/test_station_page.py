"""The operator's page in a real browser: behind its login, live while the daemon inspects a
video, a kept part labelled with a click (the label on MQTT and in the store); requests without
the token are refused."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.support.broker import free_port
from tests.support.browser import chrome
from tests.support.mqtt_client import Recorder

PREFIX = "lineside/cell-1"
TOKEN = "correct-horse-battery-staple"


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
def browser():
    driver = chrome()
    yield driver
    driver.quit()


def test_login_live_view_and_a_label_with_a_click(
    tmp_path, broker, start_daemon, parts_video, browser
):
    token = tmp_path / "ui-token"
    token.write_text(TOKEN + "\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rec = Recorder(broker.port, f"{PREFIX}/#", "page")
    daemon = start_daemon(
        broker.port,
        source={"kind": "video", "path": str(parts_video), "loop": True, "fps": 5},
        review={"path": str(tmp_path / "review"), "fail_every": 1},
        ui={"port": port, "token_file": str(token), "refresh_s": 0.3},
    )
    rec.wait_for(lambda: len(rec.on("inspection")) >= 3, 90, "inspections")

    # Without the token: nothing but the login form.
    assert _status(f"{base}/") == 303
    assert _status(f"{base}/api/state") == 401
    assert _status(f"{base}/live.jpg") == 401
    assert _status(f"{base}/events") == 401
    label = json.dumps({"seq": 1, "label": "good"}).encode()
    assert _status(f"{base}/api/label", label, {"Content-Type": "application/json"}) == 401
    assert _status(f"{base}/login", b"token=guess", {}) == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert _status(f"{base}/api/state", headers=bearer) == 200

    browser.get(f"{base}/")
    assert browser.current_url.endswith("/login")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "login").click()
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "seq").text.isdigit())
    first_seq = int(browser.find_element(By.ID, "seq").text)
    first_src = browser.find_element(By.ID, "live").get_attribute("src")
    # Live: the part number, verdict and image move on while the daemon inspects.
    wait.until(lambda d: int(d.find_element(By.ID, "seq").text) >= first_seq + 3)
    wait.until(lambda d: d.find_element(By.ID, "live").get_attribute("src") != first_src)
    wait.until(
        lambda d: d.execute_script("return document.getElementById('live').naturalWidth") > 0
    )
    assert browser.find_element(By.ID, "verdict").text.lower() in ("pass", "review", "fail")
    assert "camera ok" in browser.find_element(By.ID, "camera").text

    # The review queue: label the newest kept part good with a click.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#queue button.good"))
    button = browser.find_elements(By.CSS_SELECTOR, "#queue button.good")[0]
    seq = int(button.get_attribute("data-seq"))
    shots = Path(os.environ.get("LINESIDE_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(shots / "station-page.png"))
    button.click()
    row = f"#queue tr[data-seq='{seq}'] .decided"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row))
    assert browser.find_element(By.CSS_SELECTOR, row).text == "good"

    rec.wait_for(
        lambda: any(
            json.loads(m.payload)["seq"] == seq
            for m in rec.on("label")
            if m.topic == f"{PREFIX}/label"
        ),
        20,
        "the label on MQTT",
    )
    message = next(json.loads(m.payload) for m in rec.on("label") if m.topic == f"{PREFIX}/label")
    assert message["label"] == "good" and message["by"] == "page"
    stored = json.loads((tmp_path / "review" / f"{seq:012d}" / "label.json").read_text())
    assert stored["label"] == "good"
    assert daemon.terminate()[0] == 0
    rec.close()
