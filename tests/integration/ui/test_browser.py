"""The dashboard in a real Chromium (Debian's chromium + chromium-driver, driven by
Selenium) against ``mail-proxy serve`` with the dev sink, as a person uses it.

Skipped with a message when Chromium or its driver is missing; a failure instead
with ``GMP_TEST_REQUIRE_CHROMIUM=1`` (as ``.ci/run`` sets). Each page is saved as a
screenshot to ``GMP_TEST_ARTIFACTS`` (default ``tmp/artifacts``) /dashboard.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from mail_proxy.testing import ServedProxy, free_port

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
ADMIN = "browser-admin-token"
XSS = "<script>window.pwned=1</script><img src=x onerror=window.pwned=1>"
ARTIFACTS = Path(os.environ.get("GMP_TEST_ARTIFACTS", "tmp/artifacts")) / "dashboard"


PAGE_CHANGING = (StaleElementReferenceException, NoSuchElementException)
# What chromedriver answers when the document is swapped between finding a node and
# reading it: the same race as a stale element, worded by the inspector protocol.
SWAPPED_NODE = "does not belong to the document"


def _require_chromium() -> None:
    missing = [path for path in (CHROMIUM, DRIVER) if shutil.which(path) is None]
    if not missing:
        return
    problem = f"Chromium not installed ({', '.join(missing)}): run scripts/test-servers.sh"
    if os.environ.get("GMP_TEST_REQUIRE_CHROMIUM") == "1":
        pytest.fail(problem, pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    _require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedProxy]:
    folder = tmp_path_factory.mktemp("browser")
    env = {"GMP_DEV_SINK": "true", "GMP_DEV_SINK_PORT": str(free_port()),
           "GMP_ALLOW_PRIVATE_TARGETS": "true", "GMP_SEND_LOOP_INTERVAL": "0.2"}  # fmt: skip
    with ServedProxy(folder / "ui.db", token=ADMIN, env=env, log_path=folder / "log") as served:
        yield served


def _shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _text(driver: WebDriver, selector: str) -> str:
    """The element's text, or "" while a navigation is replacing the page."""
    try:
        return driver.find_element(By.CSS_SELECTOR, selector).text
    except PAGE_CHANGING:
        return ""
    except WebDriverException as error:
        if SWAPPED_NODE not in str(error.msg):
            raise
        return ""


def _shown(main: str, text: str, absent: str | None) -> bool:
    return text in main and (absent is None or absent not in main)


def _wait_for(driver: WebDriver, text: str, seconds: float = 15, absent: str | None = None) -> None:
    """Wait until <main> shows ``text`` (and no longer ``absent``), across page swaps."""
    try:
        WebDriverWait(driver, seconds, poll_frequency=0.1).until(
            lambda d: _shown(_text(d, "main"), text, absent)
        )
    except TimeoutException:
        _shot(driver, "failed")
        raise


def _login(driver: WebDriver, base: str, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/ui")
    assert "/ui/login" in driver.current_url
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form[action='/ui/login'] button").click()
    _wait_for(driver, "Overview")


def _click(driver: WebDriver, selector: str, accept: bool = False) -> None:
    driver.find_element(By.CSS_SELECTOR, selector).click()
    if accept:
        WebDriverWait(driver, 5).until(lambda d: d.switch_to.alert).accept()


def _send(proxy: ServedProxy, message_id: str, subject: str) -> None:
    message = {"id": message_id, "tenant_id": "demo", "to": "you@example.com",
               "subject": subject, "body": f"<p>Hello</p>{XSS}", "html": True}  # fmt: skip
    body = {"messages": [message]}
    with proxy.client() as api:
        assert api.post("/commands/add-messages", json=body).json()["queued"] == 1


def test_admin_watches_a_mail_arrive_live_and_manages_the_tenant(
    browser: WebDriver, proxy: ServedProxy
) -> None:
    base = proxy.url
    browser.get(f"{base}/ui/login")
    _shot(browser, "01-login")
    _login(browser, base, ADMIN)
    browser.get(f"{base}/ui/messages")
    _wait_for(browser, "The queue is empty")
    _shot(browser, "02-messages-empty")

    _send(proxy, "welcome-1", f"Welcome {XSS}")
    _wait_for(browser, "welcome-1")  # the listing refreshed itself, no reload
    assert browser.execute_script("return window.pwned === undefined")
    _send(proxy, "invoice-7", "Your invoice")
    _wait_for(browser, "invoice-7")
    browser.find_element(By.ID, "f-q").send_keys("invoice")
    _click(browser, "form[role='search'] button")
    _wait_for(browser, "Your invoice", absent="welcome-1")
    _shot(browser, "03-messages-search")

    browser.get(f"{base}/ui/message?tenant=demo&id=welcome-1")
    WebDriverWait(browser, 15).until(lambda d: _sent(d))
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "<script>window.pwned=1</script>" in main  # shown as text
    assert "queued" in main and "sent" in main
    assert browser.execute_script("return window.pwned === undefined")
    _shot(browser, "04-message")

    browser.get(f"{base}/ui")
    _wait_for(browser, "Client sync health")
    _shot(browser, "05-overview")
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    browser.refresh()
    _wait_for(browser, "Client sync health")
    _shot(browser, "06-overview-dark")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

    browser.get(f"{base}/ui/mailbox")
    _wait_for(browser, "Your invoice")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Your invoice").click()
    _wait_for(browser, "Envelope")
    _shot(browser, "07-mailbox")

    browser.get(f"{base}/ui/tenants/demo")
    _click(browser, "form[action$='/suspend'] button")
    _wait_for(browser, "Suspended: whole tenant")
    _click(browser, "form[action$='/activate'] button")
    _wait_for(browser, "Sending normally")
    _click(browser, "form[action$='/rotate-key'] button", accept=True)
    _wait_for(browser, "shown only this once")
    key = browser.find_element(By.CSS_SELECTOR, "code.secret").text
    _shot(browser, "08-new-key")
    browser.get(f"{base}/ui/tenants/demo")
    _shot(browser, "09-tenant")
    assert key not in browser.page_source  # shown once only

    browser.get(f"{base}/ui/instance")
    _wait_for(browser, "Command log")
    assert "/ui/tenants/demo/suspend" in browser.find_element(By.TAG_NAME, "main").text
    assert ADMIN not in browser.page_source
    _shot(browser, "10-instance")

    _login(browser, base, key)
    assert "tenant demo" in browser.find_element(By.TAG_NAME, "header").text
    browser.get(f"{base}/ui/tenants/other-tenant")
    assert "Error 401" in browser.find_element(By.TAG_NAME, "main").text
    browser.set_window_size(390, 844)
    browser.get(f"{base}/ui/messages")
    _wait_for(browser, "welcome-1")
    _shot(browser, "11-messages-phone")
    browser.set_window_size(1280, 900)


def test_a_form_posted_from_another_site_is_refused(browser: WebDriver, proxy: ServedProxy) -> None:
    """A forged form carries neither the session (SameSite=Strict) nor the CSRF token."""
    _login(browser, proxy.url, ADMIN)
    forged = (
        "<form id=f method=post action='" + proxy.url + "/ui/instance/suspend'></form>"
        "<script>document.getElementById('f').submit()</script>"
    )
    browser.get("data:text/html," + forged)
    WebDriverWait(browser, 10).until(lambda d: d.current_url.startswith(proxy.url))
    with httpx.Client(base_url=proxy.url, headers={"X-API-Token": ADMIN}) as api:
        assert api.get("/status").json()["active"] is True


def _sent(driver: WebDriver) -> bool:
    driver.refresh()
    return "sent" in _text(driver, "h1 .badge")
