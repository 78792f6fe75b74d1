"""Airflow's UI in headless Chromium: sign in through the SimpleAuthManager's form and check that
a DAG run's page shows it as successful."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1600, 1000)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium keeps calling Google's services, which floods a closed network.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=en-US",  # the state badge's text is translated
)
# The run page's header card holds the run id heading and the run's state badge.
HEADER_CARD = (By.CSS_SELECTOR, '[data-testid="header-card"]')
STATE_BADGE = (By.CSS_SELECTOR, '[data-testid="state-badge"]')


def check_run_in_ui(
    base_url: str,
    username: str,
    password: str,
    dag_id: str,
    run_id: str,
    screenshot: Path,
    timeout: float = 60,
) -> dict[str, str]:
    """Sign in, open /dags/<dag_id>/runs/<run_id>, wait for the run's state badge to read
    "Success" and save a 1600x1000 screenshot. Returns the state text, the page title and URL;
    an AssertionError with the page's text if the run is not shown as successful."""
    base_url = base_url.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="recflow-chromium-") as profile:
        driver = _start_chromium(Path(profile))
        try:
            _sign_in(driver, base_url, username, password, timeout)
            # ':' and '+' left as they are, like the UI's own links to runs.
            driver.get(f"{base_url}/dags/{quote(dag_id)}/runs/{quote(run_id, safe=':+')}")
            state = _wait_for_state(driver, run_id, "success", timeout)
            screenshot = Path(screenshot)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            if not driver.save_screenshot(str(screenshot)):
                raise RuntimeError(f"could not write {screenshot}")
            return {"state": state, "title": driver.title, "url": driver.current_url}
        finally:
            driver.quit()


def _start_chromium(profile: Path) -> WebDriver:
    # A Service with an explicit driver path (and the browser's binary_location) keeps Selenium
    # Manager from running at all; SE_OFFLINE stops it downloading should it run anyway.
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # --window-size counts the (invisible) browser frame; this makes the page itself 1600x1000.
    width, height = WINDOW
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    return driver


def _sign_in(driver: WebDriver, base_url: str, username: str, password: str, timeout: float) -> None:
    """The SimpleAuthManager's React login form at /auth/login: username, password, submit."""
    driver.get(f"{base_url}/auth/login")
    wait = WebDriverWait(driver, timeout)
    try:
        wait.until(ec.visibility_of_element_located((By.NAME, "username"))).send_keys(username)
        driver.find_element(By.NAME, "password").send_keys(password)
        # The button stays disabled until both fields are filled.
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[type=submit]"))).click()
        wait.until(lambda d: "/auth/login" not in d.current_url)
    except TimeoutException:
        raise AssertionError(
            f"sign-in as {username} failed at {driver.current_url}:\n{_page_text(driver)}"
        ) from None


def _wait_for_state(driver: WebDriver, run_id: str, expected: str, timeout: float) -> str:
    """The state badge's text once the header card of run_id shows `expected` (case-insensitive)."""
    last = {"state": None}

    def shown(d: WebDriver) -> str | None:
        for card in d.find_elements(*HEADER_CARD):
            if run_id in card.text and (badges := card.find_elements(*STATE_BADGE)):
                last["state"] = badges[0].text.strip()
                return last["state"] if last["state"].lower() == expected else None
        return None

    # React re-renders the card while its queries refresh, leaving stale element references.
    wait = WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,))
    try:
        return wait.until(shown)
    except TimeoutException:
        raise AssertionError(
            f"run {run_id} not shown as {expected!r} after {timeout:.0f}s (state badge: {last['state']!r}) "
            f"at {driver.current_url}:\n{_page_text(driver)}"
        ) from None


def _page_text(driver: WebDriver, limit: int = 3000) -> str:
    try:
        return driver.find_element(By.TAG_NAME, "body").text[:limit]
    except Exception as error:  # the page itself may be what broke
        return f"<no page text: {error}>"
