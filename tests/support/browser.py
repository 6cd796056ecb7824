"""A real browser for the page's tests: Debian's chromium driven by its chromium-driver, headless,
with axe-core (from the `axe-core-python` package) to check the page's accessibility. Nothing is
downloaded at run time."""

from __future__ import annotations

import os
import shutil

import pytest

# What the checks hold the page to: WCAG 2 A and AA, and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def chrome():
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(driver_path):
        reason = "chromium-driver is not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--hide-scrollbars",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)


def show_at(driver, width: int, height: int) -> None:
    """Lay the page out for a screen of exactly `width` x `height` CSS pixels (a phone's with
    touch), as the window's own size includes the browser's frame."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def accessibility_problems(driver) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    from axe_core_python.base import AXE_SCRIPT

    driver.execute_script(AXE_SCRIPT)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
        ".then(r => done(r.violations), e => done([{id: 'axe failed', impact: 'critical',"
        " help: String(e), nodes: []}]));",
        AXE_TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + "; ".join(n["target"][0] if n.get("target") else "?" for n in v["nodes"][:5])
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
