"""The sampling page in a real browser: Debian's headless Chromium, driven through chromedriver
(``scripts/install-chromium.sh`` installs both; CI runs it first).

Each control is operated as a person would (typing, a menu, the arrow keys on the slider), and
the image shown is checked against what the server draws for the same values. With
``TRANSGAN_PAGE_SCREENSHOTS=DIR`` the page of each model is saved as
``DIR/serve-page.png`` and ``DIR/serve-page-conditional.png``; ``TRANSGAN_PAGE_MODELS=A,B``
serves the unconditional model A and the conditional model B instead of tiny untrained ones
(``scripts/page-screenshots.sh`` retakes the README's pictures this way).
"""

from __future__ import annotations

import base64
import os
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import transgan
from transgan.serve import MAX_SAMPLES, SampleServer

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (scripts/install-chromium.sh)")

NAMES = ["circle", "square", "triangle"]
WAIT_S = 60
# The shown image's bytes (fetched from its blob: address), base64, or null when none.
SHOWN_IMAGE = """
const done = arguments[arguments.length - 1];
const img = document.getElementById("grid");
if (!img.getAttribute("src")) { done(null); return; }
fetch(img.src).then((r) => r.blob()).then((blob) => {
  const reader = new FileReader();
  reader.onload = () => done(reader.result.split(",")[1]);
  reader.readAsDataURL(blob);
});
"""


def _models(root: Path) -> tuple[Path, Path]:
    """An unconditional and a conditional (named classes) model folder."""
    given = os.environ.get("TRANSGAN_PAGE_MODELS")
    if given:
        plain, conditional = given.split(",")
        return Path(plain), Path(conditional)
    torch.manual_seed(0)
    tiny = {"width": 32, "depths": [1, 1], "latent_dim": 16}
    transgan.build_generator("digits", **tiny).save_pretrained(root / "plain")
    transgan.build_generator("digits", **tiny, num_classes=3, class_names=NAMES
                             ).save_pretrained(root / "conditional")
    return root / "plain", root / "conditional"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1200"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(WAIT_S)
    yield driver
    driver.quit()


def _serve(path: Path) -> Iterator[SampleServer]:
    server = SampleServer(transgan.load_generator(path), port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _models(tmp_path_factory.mktemp("page"))


@pytest.fixture(scope="module")
def plain(models: tuple[Path, Path]) -> Iterator[SampleServer]:
    yield from _serve(models[0])


@pytest.fixture(scope="module")
def conditional(models: tuple[Path, Path]) -> Iterator[SampleServer]:
    yield from _serve(models[1])


class Page:
    """The page as a person uses it, and what it shows."""

    def __init__(self, driver: webdriver.Chrome, server: SampleServer, query: str = "") -> None:
        self.driver, self.server = driver, server
        driver.get(server.url + query)
        self.shown = self.settle(None)

    def settle(self, before: bytes | None) -> bytes | None:
        """Wait until no request is in flight and the image (or the reason for none) differs
        from ``before``; the image's bytes, None when there is none."""
        def ready(driver: webdriver.Chrome) -> bool:
            busy = driver.execute_script("return loading || pending !== null")
            return not busy and (self.image() != before or bool(self.status()))
        try:
            WebDriverWait(self.driver, WAIT_S).until(ready)
        except TimeoutException:
            pytest.fail(f"the page did not change; status {self.status()!r}")
        return self.image()

    def image(self) -> bytes | None:
        data = self.driver.execute_async_script(SHOWN_IMAGE)
        return None if data is None else base64.b64decode(data)

    def status(self) -> str:
        return self.driver.find_element(By.ID, "status").text

    def element(self, id_: str):  # noqa: ANN201 -- a selenium WebElement
        return self.driver.find_element(By.ID, id_)

    def type_into(self, id_: str, text: str) -> bytes | None:
        field = self.element(id_)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.BACKSPACE, text, Keys.TAB)
        self.shown = self.settle(self.shown)
        return self.shown

    def choose(self, id_: str, text: str) -> bytes | None:
        Select(self.element(id_)).select_by_visible_text(text)
        self.shown = self.settle(self.shown)
        return self.shown

    def slide(self, id_: str, *keys: str) -> bytes | None:
        self.element(id_).send_keys(*keys)
        self.shown = self.settle(self.shown)
        return self.shown

    def address(self) -> str:
        return self.driver.execute_script("return location.search")

    def server_image(self) -> bytes:
        """What the server draws for the request the page made (its download link)."""
        href = self.element("download").get_attribute("href")
        with urllib.request.urlopen(href, timeout=WAIT_S) as response:
            return response.read()

    def screenshot(self, name: str) -> None:
        folder = os.environ.get("TRANSGAN_PAGE_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(Path(folder) / name))


def test_the_controls_of_an_unconditional_model(browser: webdriver.Chrome,
                                                plain: SampleServer) -> None:
    page = Page(browser, plain)
    first = page.shown
    assert first is not None and first == page.server_image()
    assert not page.element("class-box").is_displayed()  # hidden stays hidden
    assert page.element("grid").size["width"] >= 600  # drawn large, not a thumbnail
    seeded = page.type_into("seed", "5")
    assert seeded not in (None, first) and seeded == page.server_image()
    assert "seed=5" in page.address()
    more = page.choose("n", "36")
    assert more not in (None, seeded) and more == page.server_image()
    page.screenshot("serve-page.png")
    tamed = page.type_into("psi", "0.5")
    assert tamed not in (None, more) and "truncation=0.5" in page.address()
    walked = page.slide("t", *[Keys.ARROW_RIGHT] * 25)  # by 0.02 a key
    assert walked not in (None, tamed) and walked == page.server_image()
    assert "t=0.5" in page.address() and page.element("t-value").text == "0.50"
    assert page.slide("t", Keys.HOME) == tamed and "t=" not in page.address()
    # A refused value shows the server's reason, and no broken image.
    assert page.type_into("psi", "0") is None
    assert page.status() == "parameter 'truncation' must be a number > 0 or 'none', got '0'"
    assert not page.element("grid").is_displayed()
    page.type_into("psi", "0.5")
    assert page.status() == "" and page.shown == tamed


def test_a_bookmarked_address_shows_its_view(browser: webdriver.Chrome,
                                             plain: SampleServer) -> None:
    page = Page(browser, plain, "?seed=5&n=36&truncation=0.5")
    assert page.element("seed").get_attribute("value") == "5"
    assert page.element("psi").get_attribute("value") == "0.5"
    with urllib.request.urlopen(f"{plain.url}sample.png?seed=5&n=36&truncation=0.5",
                                timeout=WAIT_S) as response:
        assert page.shown == response.read()


def test_the_class_menu_of_a_conditional_model(browser: webdriver.Chrome,
                                               conditional: SampleServer) -> None:
    page = Page(browser, conditional)
    names = conditional.renderer.classes
    assert page.element("class-box").is_displayed()
    menu = [o.text for o in Select(page.element("class")).options]
    assert menu[1:] == names and menu[0].startswith("all")
    every = page.shown
    # By default 16 images or enough for rows of 4 (the images menu offers squares).
    wanted = min(MAX_SAMPLES, max(16, 4 * len(names)))
    n = next(k * k for k in range(1, 9) if k * k >= wanted)
    columns = max(1, n // len(names))
    assert f"one row per class: {columns} each" in page.element("layout").text
    one = page.choose("class", names[1])
    assert one not in (None, every) and one == page.server_image()
    assert f"class={names[1]}" in page.address() and page.element("layout").text == ""
    assert page.choose("class", names[0]) != one
    page.choose("class", menu[0])
    page.screenshot("serve-page-conditional.png")
    # An address may name the class; an index selects the class's name.
    for given in (names[1], "1"):
        linked = Page(browser, conditional, f"?class={given}")
        assert Select(linked.element("class")).first_selected_option.text == names[1]
        assert linked.shown == one
