"""The web UI in headless Chromium (Debian's chromium and chromedriver, driven by Selenium):
each page opens without script errors, a slow download's bar advances, the charts are drawn,
and a URL holding <script> stays text. A screenshot of each page goes to build/screenshots/
(ARCA_SCREENSHOTS to change it)."""

import json
import os
import re
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import SERVE_POLL, ROOT

selenium = pytest.importorskip("selenium", reason="python3-selenium (scripts/deps test)")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = os.environ.get("ARCA_SCREENSHOTS", os.path.join(ROOT, "build", "screenshots"))


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are needed: run scripts/deps test")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Chromium leaves its singleton socket's directory in TMPDIR: one of our own, removed after
    tmp = tempfile.mkdtemp(prefix="arca-chromium-")
    service = Service(CHROMEDRIVER, env={**os.environ, "TMPDIR": tmp})
    try:
        driver = webdriver.Chrome(service=service, options=options)
        os.makedirs(SHOTS, exist_ok=True)
        yield driver
        driver.quit()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def arca(start_arca):
    """arca for a browser: Chromium keeps its connections open, so a stop would wait the whole
    grace period for them; one second is enough here."""
    return start_arca("--upstream-allow", "127.0.0.0/8", "--grace-period", "1s")


def open_page(browser, arca, path):
    # leave the last page (its script may still poll an arca a previous scenario stopped) and
    # drop what the console said meanwhile: errors are this page's only
    browser.get("about:blank")
    browser.get_log("browser")
    browser.get(f"http://{arca.host}:{arca.port}{path}")
    return browser


def script_errors(browser):
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def shoot(browser, name):
    """The page as a PNG in SHOTS (kept for the README), checked as it is written: a check of
    its own, elsewhere in the module, could run first on another worker (pytest -n)."""
    path = os.path.join(SHOTS, name + ".png")
    assert browser.save_screenshot(path), path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", path


@pytest.mark.long_scenario
def test_every_page_opens_without_errors(origin, arca, browser):
    url = origin.add("/Image", data=os.urandom(300000))
    arca.fetch(url)
    arca.fetch(url)
    arca.fetch(origin.url("/missing-dtb"))
    for path, name, heading in (("/", "home", "arca"), ("/help/", "help", "Help"),
                                ("/resources/successes/", "resources", "Resources"),
                                ("/resources/failures/", "failures", "Resources"),
                                ("/statistics/", "statistics", "Statistics")):
        open_page(browser, arca, path)
        assert browser.find_element(By.TAG_NAME, "h1").text == heading
        assert script_errors(browser) == [], path
        shoot(browser, name)
    open_page(browser, arca, "/")
    button = browser.find_element(By.CSS_SELECTOR, "button[data-copy]")
    assert button.is_displayed()  # shown only once the script runs
    button.click()
    deadline = time.monotonic() + 3
    while button.text == "Copy" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert button.text in ("Copied", "Press Ctrl+C")
    assert "/api/v1/fetch/?url=" in browser.find_element(By.ID, "prefix").text


def progress_of(browser):
    bar = browser.find_element(By.CSS_SELECTOR, "tr[data-key] progress")
    return float(bar.get_attribute("value") or 0), float(bar.get_attribute("max") or 0)


class GatedOrigin:
    """An origin whose one file's body goes out only as far as the test has released it: the
    download's pace is the test's, never the machine's."""

    def __init__(self, data):
        self.data, self.allowed, self.cond = data, 0, threading.Condition()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(gate.data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                sent = 0
                while sent < len(gate.data):
                    with gate.cond:
                        gate.cond.wait_for(lambda: gate.allowed > sent)
                        upto = gate.allowed
                    try:
                        self.wfile.write(gate.data[sent:upto])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    sent = upto

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/rootfs.ext4"
        threading.Thread(target=self.server.serve_forever, args=(SERVE_POLL,),
                         daemon=True).start()

    def release(self, upto):
        with self.cond:
            self.allowed = min(upto, len(self.data))
            self.cond.notify_all()

    def stop(self):
        self.release(len(self.data))
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gated():
    origin = GatedOrigin(os.urandom(1500000))
    yield origin
    origin.stop()


def wait_for(what, check, timeout=20):
    """check()'s first true value, asked every 0.1 s until the deadline."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)
    return value


def downloading(arca):
    rows = json.loads(arca.get("/api/v1/resources/?state=downloading")[2])["resources"]
    return rows[0]["downloaded"] if rows else 0


def bar_and_rate(browser):
    """The downloading row's bar value and rate text, read at one instant."""
    return browser.execute_script(
        "const row = document.querySelector('tr[data-key]');"
        "return [row.querySelector('progress').value, row.querySelector('.rate').textContent];")


RATE = re.compile(r"\d+(\.\d)? (KiB|MiB)/s")


def test_a_slow_download_shows_a_moving_progress_bar(arca, gated, browser):
    data = gated.data
    got = {}
    client = threading.Thread(target=lambda: got.update(body=arca.fetch(gated.url)[2]))
    client.start()
    try:
        gated.release(300000)
        wait_for("arca to have 300000 bytes", lambda: downloading(arca) >= 300000)
        open_page(browser, arca, "/resources/downloading/")
        assert progress_of(browser) == (300000, len(data))  # as the page came
        # the page's script moves the bar: once the origin sent more, a poll (every second)
        # shows it
        gated.release(600000)
        first = wait_for("the bar past 300000",
                         lambda: (v := bar_and_rate(browser)[0]) >= 600000 and v)
        # a rate needs a poll that saw more than the one before it: the origin keeps sending
        # a little at a time until one did
        released = 600000

        def moved_with_a_rate():
            nonlocal released
            value, rate = bar_and_rate(browser)
            if value > first and RATE.fullmatch(rate):
                return value, rate
            released = min(released + 20000, len(data) - 1)
            gated.release(released)
            return None

        second = wait_for("a moving bar with a rate", moved_with_a_rate)[0]
        assert 300000 < first < second < len(data), (first, second)
        shoot(browser, "downloading")
    finally:
        gated.release(len(data))
        client.join()
    assert got["body"] == data
    wait_for("the row to read finished", lambda: "finished" in browser.find_element(
        By.CSS_SELECTOR, "tr[data-key] .got").text)
    assert script_errors(browser) == []


def test_statistics_charts_are_drawn(origin, arca, browser):
    url = origin.add("/kernel", data=os.urandom(400000))
    for _ in range(4):
        arca.fetch(url)
    open_page(browser, arca, "/statistics/")
    heights = browser.execute_script(
        "return [...document.querySelectorAll('#traffic rect.bar')]"
        ".map(r => r.getBBox().height)")
    assert len(heights) == 96  # 48 hours, served and downloaded
    served_now, downloaded_now = heights[-2], heights[-1]
    assert served_now > downloaded_now > 0  # 4 served for 1 downloaded, drawn to scale
    assert abs(served_now / downloaded_now - 4) < 0.05
    hits = browser.execute_script(
        "return document.querySelector('#hits rect.bar:last-of-type').getBBox().height")
    assert hits > 0
    assert browser.find_element(By.ID, "hit-ratio").text.startswith("75.0 %")
    browser.set_window_size(1280, 1560)  # the whole page, for the README
    shoot(browser, "statistics")
    browser.set_window_size(1280, 1000)


def test_a_script_in_a_url_is_shown_as_text(origin, arca, browser):
    origin.add("/x", data=b"x")
    payload = "?p=<script>window.pwned=1;alert(1)</script><img/src=x/onerror=window.pwned=2>"
    assert arca.fetch(origin.url("/x") + payload)[0] == 200
    assert arca.fetch(origin.url("/none") + payload)[0] == 404
    for path in ("/resources/successes/", "/resources/failures/"):
        # a download is listed once it is complete (after its fsyncs) or its failure is noted,
        # a moment after its client had the answer: the page is asked again until it has it
        cell = wait_for(f"a row on {path}", lambda: open_page(browser, arca, path)
                        .find_elements(By.CSS_SELECTOR, "td.url"))[0].text
        # shown as the URL arca fetched: its normal form, < and > percent-encoded
        assert "%3Cscript%3Ewindow.pwned=1;alert(1)%3C/script%3E" in cell
        assert browser.execute_script("return window.pwned === undefined")
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text
    shoot(browser, "script-url")


def test_a_bucket_folder_in_chromium(start_arca, workdir, browser):
    """A bucket listing as a lab's user sees it: folders first, sizes, a key holding markup
    shown as text, the folder links and the JSON link working."""
    from s3 import ACCESS, S3, SECRET
    s3 = S3(buckets=["lkft"])
    try:
        build = "linux-next/next-20261122/arm64/"
        s3.put_many("lkft", [(build + "Image.gz", os.urandom(9_400_000)),
                             (build + "System.map", os.urandom(4_200_000)),
                             (build + "config", os.urandom(260_000)),
                             (build + "modules.tar.xz", os.urandom(14_800_000)),
                             (build + "vmlinux.xz", os.urandom(21_000_000)),
                             (build + "dtbs/qcom/qrb5165-rb5.dtb", os.urandom(120_000)),
                             (build + "dtbs/index.txt", b"dtbs"),
                             (build + "logs/build.log", b"log"),
                             (build + "<img src=x onerror=window.pwned=1>.txt", b"x")])
        creds = os.path.join(workdir, "s3.creds")
        with open(creds, "w") as f:
            f.write(f"{ACCESS}\n{SECRET}\n")
        arca = start_arca("--upstream-allow", "127.0.0.0/8", "--grace-period", "1s", "--bucket",
                          f"lkft={s3.url('lkft')}",
                          env={"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET})
        open_page(browser, arca, "/browse/lkft/" + build)
        assert browser.find_element(By.TAG_NAME, "h1").text == \
            "Buckets / lkft / linux-next / next-20261122 / arm64 /"
        names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "td.name a")]
        assert names == ["../", "dtbs/", "logs/", "<img src=x onerror=window.pwned=1>.txt",
                         "Image.gz", "System.map", "config", "modules.tar.xz", "vmlinux.xz"]
        assert browser.execute_script("return window.pwned === undefined")
        assert script_errors(browser) == []
        nav = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "header nav a")]
        assert "Buckets" in nav
        shoot(browser, "browse")
        browser.find_element(By.LINK_TEXT, "dtbs/").click()
        assert browser.current_url.endswith("/browse/lkft/" + build + "dtbs/")
        names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "td.name a")]
        assert names == ["../", "qcom/", "index.txt"]
        browser.find_element(By.LINK_TEXT, "JSON of the whole folder").click()
        assert '"files"' in browser.find_element(By.TAG_NAME, "body").text
    finally:
        s3.stop()
