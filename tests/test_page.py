"""The page at / and the API docs at /docs, in a real browser (Debian's chromium driven by Playwright).

Skipped, with the reason, where no chromium is installed (.ci/run installs it). Screenshots land in
build/test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from carmask.cutout import CutoutOptions
from carmask.cutout.render import crop_region
from tests.fixtures import glass_car_photo

CHROMIUM = os.environ.get("CARMASK_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artifacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium found (apt-get install chromium)")


def ramp_photo(path: Path, width: int = 320, height: int = 240) -> Path:
    """Red rising left to right: the red test model's probability rises with it, so the threshold moves the
    mask's edge (car where red/255 > 0.25 at threshold 0.5, > 0.3236 at 0.95)."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[..., 0] = np.linspace(0, 255, width).round().astype(np.uint8)[None, :]
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture(scope="module")
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    yield from open_page(browser, server)


@pytest.fixture
def glass_page(browser, glass_server):
    yield from open_page(browser, glass_server)


def open_page(browser, server):
    url, _ = server
    context = browser.new_context(accept_downloads=True, viewport={"width": 1100, "height": 900})
    page = context.new_page()
    # Nothing but the service may be reached: the page and the docs must work offline.
    outside = []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(url)
            else (outside.append(route.request.url), route.abort())
        ),
    )
    page.goto(url + "/")
    yield page, url, outside
    context.close()


def coverage_of(card) -> float:
    return float(card.get_attribute("data-coverage"))


def test_page_segments_a_photo_rethresholds_and_downloads(page, tmp_path):
    page, _, outside = page
    page.wait_for_function("document.querySelector('#model-info').textContent.includes('red')")
    page.set_input_files("#files", str(ramp_photo(tmp_path / "ramp.png")))
    card = page.locator(".card").first
    card.locator(".facts").filter(has_text="ms").wait_for()
    overlay = card.locator("canvas.overlay")
    assert overlay.evaluate("c => [c.width, c.height]") == [320, 240]
    assert coverage_of(card) == pytest.approx(0.75, abs=0.01)

    page.locator("#threshold").fill("0.95")  # re-renders from the probabilities, no new upload
    page.wait_for_function("parseFloat(document.querySelector('.card').dataset.coverage) < 0.7")
    assert coverage_of(card) == pytest.approx(1 - 0.3236, abs=0.01)

    with page.expect_download() as info:
        card.locator("[data-download=mask]").click()
    saved = tmp_path / "mask.png"
    info.value.save_as(saved)
    mask = np.asarray(Image.open(saved).convert("L"))
    assert mask.shape == (240, 320) and set(np.unique(mask)) == {0, 255}
    assert (mask > 0).mean() == pytest.approx(coverage_of(card), abs=1e-6)

    with page.expect_download() as info:
        page.locator("#zip").click()
    assert info.value.suggested_filename == "masks.zip"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page.png"), full_page=True)
    assert not outside, outside


def test_cutout_options_preview_the_services_cutout(glass_page, tmp_path):
    """Glass, shadow, background and crop: the preview becomes the service's cutout with those options, the
    download is that file, and nothing is fetched from outside; the tab has an icon (no 404 in the console)."""
    page, url, outside = glass_page
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.wait_for_function("!document.querySelector('#windows').disabled")  # this model marks glass
    image, car, window = glass_car_photo(320, 240)
    image.save(tmp_path / "car.png")
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/segment" in request.url else None)
    page.set_input_files("#files", str(tmp_path / "car.png"))
    card = page.locator(".card").first
    card.locator(".facts").filter(has_text="ms").wait_for()
    assert card.get_attribute("data-cutout") == "page"  # no option: drawn in the page, no second request

    page.select_option("#windows", "transparent")
    page.check("#shadow")
    page.check("#use-bg")
    page.check("#crop")
    page.wait_for_function("document.querySelector('.card').dataset.cutout === 'service'")
    last = asked[-1]
    for part in ("format=cutout", "windows=transparent", "shadow=contact", "bg_color=ffffff", "crop=true"):
        assert part in last, (part, last)
    rows, cols = np.flatnonzero(car.any(1)), np.flatnonzero(car.any(0))
    size = card.locator("canvas.cutout").evaluate("c => [c.width, c.height]")
    x0, y0, x1, y1 = crop_region(car, CutoutOptions(shadow="contact", crop=True))  # room below for the shadow
    assert size == [x1 - x0, y1 - y0] and y1 - y0 > len(rows) + 2 * round(0.05 * len(rows))
    with page.expect_download() as info:
        card.locator("[data-download=cutout]").click()
    saved = tmp_path / "cutout.png"
    info.value.save_as(saved)
    out = np.asarray(Image.open(saved).convert("RGB")).astype(int)
    top, left = round(0.05 * len(rows)), round(0.05 * len(cols))
    glass = window[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] > 0
    inner = out[top : top + len(rows), left : left + len(cols)][glass]
    assert inner.mean(0)[1] > 150  # the white background shows through the blue glass
    icon = page.request.get(url + "/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"] == "image/x-icon"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-cutout.png"), full_page=True)
    assert not outside, outside
    assert not failed, failed


def test_glass_choice_is_off_for_a_model_without_glass(page):
    page, _, _ = page
    page.wait_for_function("document.querySelector('#model-info').textContent.includes('red')")
    page.wait_for_function("document.querySelector('#windows').disabled")
    assert page.locator("#windows-note").is_visible()


def test_every_car_asks_the_service_again_with_cars_all(page, tmp_path):
    """The checkbox re-segments each photo with ?cars=all, and the zip asks for the same."""
    page, _, _ = page
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/segment" in request.url else None)
    page.set_input_files("#files", str(ramp_photo(tmp_path / "ramp.png")))
    card = page.locator(".card").first
    card.locator(".facts").filter(has_text="ms").wait_for()
    assert len(asked) == 1 and "cars=" not in asked[0]  # the model's own choice
    page.locator("#every-car").check()
    page.wait_for_function("document.querySelector('#status').textContent.includes('shown')")
    assert len(asked) == 2 and "cars=all" in asked[1] and "format=probabilities" in asked[1]
    assert coverage_of(card) == pytest.approx(0.75, abs=0.01)  # one region: the same mask either way
    with page.expect_download():
        page.locator("#zip").click()
    assert "segment/batch" in asked[2] and "cars=all" in asked[2]
    page.locator("#every-car").uncheck()
    page.wait_for_function("document.querySelector('#status').textContent.includes('shown')")
    assert len(asked) == 4 and "cars=" not in asked[3]


def test_page_says_in_plain_words_what_was_wrong(page, tmp_path):
    page, _, _ = page
    bad = tmp_path / "notes.jpg"
    bad.write_text("these are not pixels")
    page.set_input_files("#files", str(bad))
    error = page.locator(".card .error")
    error.wait_for()
    assert "not a photo the service can read" in error.inner_text()


def test_page_is_keyboard_reachable_and_fits_a_phone(browser, server):
    url, _ = server
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(url + "/")
    reached = []
    for _ in range(6):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id"))
    assert {"files", "threshold"} <= set(reached)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    page.screenshot(path=str(ARTIFACTS / "page-phone.png"))
    context.close()


def test_docs_render_every_operation_offline(page):
    page, url, outside = page
    page.goto(url + "/docs")
    page.locator(".opblock").first.wait_for(timeout=20000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    for path in ("/segment", "/segment/batch", "/health", "/ready", "/model"):
        assert path in paths
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "docs.png"))
    assert not outside, outside
