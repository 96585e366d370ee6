"""The Space in a real browser: Debian's chromium driven by playwright against the app on 127.0.0.1.

The page reports what the server computed in its details box (clicks as received, mask area, whether the mask
covers the last click); the tests read it there. Screenshots go to test-artifacts/space/. Most tests run the UI on
a deterministic stand-in segmenter (a random tiny model would not give a mask with known content); one runs the
real pipeline with the tiny checkpoint end to end. Skipped only when chromium is missing outside CI.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from test_space_answers import IOUS, RADII, AnswersSegmenter, multimask_checkpoint  # noqa: F401 (a fixture)
from test_space_handlers import REPO_ROOT, DiskSegmenter, grabcut_path

from hf_iis import space

torch.set_num_threads(1)

CHROMIUM = Path(os.environ.get("HF_IIS_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO_ROOT / "test-artifacts" / "space"
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 60_000
RADIUS = 30  # the stand-in's disk radius, in pixels

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(**build_kwargs):
    demo = space.build_demo(**build_kwargs)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                **space.launch_kwargs())
    return demo


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"chromium is missing at {CHROMIUM} in CI: `make browser` installs it")
        pytest.skip(f"chromium not installed at {CHROMIUM} (apt-get install chromium, or `make browser`)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def stand_in_url():
    demo = serve(segmenter=DiskSegmenter(radius=RADIUS))
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def answers_app():
    segmenter = AnswersSegmenter()
    demo = serve(segmenter=segmenter)
    yield demo.local_url, segmenter
    demo.close()


class SlowDiskSegmenter(DiskSegmenter):
    """The stand-in, taking `delay` seconds per call: clicks made meanwhile arrive while a prediction runs."""

    def __init__(self, delay: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    def __call__(self, *args, **kwargs) -> dict:
        time.sleep(self.delay)
        return super().__call__(*args, **kwargs)


@pytest.fixture(scope="module")
def real_answers_url(multimask_checkpoint):  # noqa: F811 (the imported fixture)
    demo = serve(model=str(multimask_checkpoint))
    yield demo.local_url
    demo.close()


class SlowAnswersSegmenter(AnswersSegmenter):
    """The three-answer stand-in, taking `delay` seconds per call."""

    def __init__(self, delay: float = 1.0) -> None:
        super().__init__()
        self.delay = delay

    def __call__(self, *args, **kwargs) -> dict:
        time.sleep(self.delay)
        return super().__call__(*args, **kwargs)


@pytest.fixture(scope="module")
def slow_answers_url():
    demo = serve(segmenter=SlowAnswersSegmenter(delay=1.5))
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def slow_url():
    demo = serve(segmenter=SlowDiskSegmenter(delay=1.0, radius=RADIUS))
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def coffee_path(tmp_path_factory) -> Path:
    """scikit-image's coffee photo (600x400, public domain) as a file: needs no data folder."""
    from skimage import data

    path = tmp_path_factory.mktemp("coffee") / "coffee.png"
    Image.fromarray(data.coffee()).save(path)
    return path


@pytest.fixture(scope="module")
def real_url(tiny_checkpoint):
    demo = serve(model=str(tiny_checkpoint))
    yield demo.local_url
    demo.close()


@pytest.fixture(scope="module")
def photo(data_root) -> tuple[Path, tuple[int, int]]:
    """A GrabCut photo and the pixel deepest inside its object (from the ground truth), as (x, y)."""
    path = grabcut_path(data_root)
    truth = np.asarray(Image.open(data_root / "GrabCut" / "boundary_GT" / f"{path.stem}.bmp").convert("L")) == 255
    row, col = np.unravel_index(np.argmax(ndimage.distance_transform_edt(truth)), truth.shape)
    return path, (int(col), int(row))


# ----------------------------------------------------------------------------- page helpers
def open_page(context, url: str):
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#canvas")
    page.wait_for_selector("#upload input[type=file]", state="attached")
    return page


def upload(page, path: Path) -> None:
    page.locator("#upload input[type=file]").set_input_files(str(path))
    page.wait_for_function("(name) => document.querySelector('#status').innerText.includes(name)", arg=path.name)


def show_details(page) -> None:
    page.get_by_text("Mask at the uploaded size, and details").click()
    page.wait_for_selector("#details textarea")


def details(page) -> dict:
    return json.loads(page.input_value("#details textarea"))


def wait_for_clicks(page, count: int) -> dict:
    page.wait_for_function(
        "(n) => { const t = document.querySelector('#details textarea');"
        " try { return t && JSON.parse(t.value).n_clicks === n; } catch (e) { return false; } }", arg=count)
    return details(page)


def click_pixel(page, x: int, y: int) -> None:
    """Click image pixel (x, y) of the displayed canvas (object-fit scaling accounted for)."""
    image = page.locator("#canvas img")
    natural_w, natural_h = natural_size(page, "#canvas img")
    # the canvas is re-rendered after each answer (and the details box grows): aim once its box has stopped moving,
    # as a person would, instead of at where it was a few milliseconds before (a click that then missed the image)
    box = image.bounding_box()
    for _ in range(20):
        page.wait_for_timeout(50)
        again = image.bounding_box()
        if again == box:
            break
        box = again
    scale = min(box["width"] / natural_w, box["height"] / natural_h)
    left = box["x"] + (box["width"] - natural_w * scale) / 2
    top = box["y"] + (box["height"] - natural_h * scale) / 2
    page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


def natural_size(page, selector: str) -> list[int]:
    """[width, height] of an image once the browser has loaded it (the details box can be updated first)."""
    page.wait_for_function("(s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth; }",
                           arg=selector)
    return page.locator(selector).evaluate("img => [img.naturalWidth, img.naturalHeight]")


def choose(page, label: str) -> None:
    page.locator("#sign").get_by_text(label).click()


# ----------------------------------------------------------------------------- tests
def test_positive_click_covers_the_pixel_and_a_negative_click_shrinks_the_mask(browser, stand_in_url, photo):
    path, (x, y) = photo
    width, height = Image.open(path).size
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, stand_in_url)
    page.screenshot(path=ARTIFACTS / "01_loaded.png", full_page=True)

    upload(page, path)
    page.wait_for_selector("#canvas img")
    page.screenshot(path=ARTIFACTS / "02_uploaded.png", full_page=True)
    show_details(page)

    click_pixel(page, x, y)
    positive = wait_for_clicks(page, 1)
    px, py, sign = positive["clicks"][0]
    assert sign == 1 and abs(px - x) <= 1 and abs(py - y) <= 1
    assert positive["mask_at_last_click"] is True and positive["mask_size"] == [width, height]
    assert abs(positive["mask_area"] - np.pi * RADIUS**2) < 0.05 * np.pi * RADIUS**2
    assert "1 click" in page.inner_text("#status")
    assert not page.locator("#answers").is_visible()  # one answer per click: nothing to pick from
    page.screenshot(path=ARTIFACTS / "03_positive_click.png", full_page=True)

    choose(page, space.NEGATIVE)
    click_pixel(page, x + RADIUS // 2, y)
    negative = wait_for_clicks(page, 2)
    assert negative["clicks"][1][2] == -1 and negative["mask_at_last_click"] is False
    assert 0 < negative["mask_area"] < positive["mask_area"]
    page.screenshot(path=ARTIFACTS / "04_negative_click.png", full_page=True)

    page.locator("#tta input[type=number]").fill("3")  # a value typed in the slider's box reruns the last click
    page.locator("#tta input[type=number]").press("Enter")
    page.wait_for_function("() => JSON.parse(document.querySelector('#details textarea').value).tta === 3")
    assert details(page)["n_clicks"] == 2

    page.click("#undo")
    assert wait_for_clicks(page, 1)["mask_area"] == positive["mask_area"]
    page.click("#reset")
    assert wait_for_clicks(page, 0)["mask_area"] == 0
    context.close()


def test_two_browser_sessions_keep_separate_clicks(browser, stand_in_url, photo):
    path, (x, y) = photo
    first_context, second_context = browser.new_context(), browser.new_context()
    first, second = open_page(first_context, stand_in_url), open_page(second_context, stand_in_url)
    for page in (first, second):
        upload(page, path)
        page.wait_for_selector("#canvas img")
        show_details(page)
    click_pixel(first, x, y)
    wait_for_clicks(first, 1)
    click_pixel(second, x - 20, y - 20)
    wait_for_clicks(second, 1)
    click_pixel(first, x + 20, y + 20)
    first_details, second_details = wait_for_clicks(first, 2), details(second)
    assert len(first_details["clicks"]) == 2 and len(second_details["clicks"]) == 1
    assert abs(second_details["clicks"][0][0] - (x - 20)) <= 1
    assert all(abs(c[0] - (x - 20)) > 5 for c in first_details["clicks"])
    first.screenshot(path=ARTIFACTS / "05_session_a.png", full_page=True)
    second.screenshot(path=ARTIFACTS / "05_session_b.png", full_page=True)
    first_context.close()
    second_context.close()


def test_a_corrupt_upload_shows_a_message_not_a_traceback(browser, stand_in_url, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, stand_in_url)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    page.locator("#upload input[type=file]").set_input_files(str(broken))
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('broken.jpg')")
    status = page.inner_text("#status")
    assert "is not an image that can be read" in status and "Traceback" not in page.content()
    page.screenshot(path=ARTIFACTS / "06_corrupt_upload.png", full_page=True)
    assert page.locator("#canvas img").count() == 0  # nothing to click on
    context.close()


def test_a_corrupt_upload_over_an_example_gives_one_message(browser, stand_in_url, tmp_path):
    """Replacing a shown image makes Gradio fire `change` twice at once: still one read and one warning."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, stand_in_url)
    page.locator("img[src*='astronaut']").first.click()
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('astronaut.png')")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    page.locator("#upload input[type=file]").set_input_files(str(broken))
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('broken.jpg')")
    page.wait_for_timeout(1500)  # the repeated event lands within milliseconds
    toasts = " ".join(page.locator(".toast-body").all_inner_texts())
    assert toasts.count("“broken.jpg” is not an image that can be read") == 1, toasts
    context.close()


def test_the_maps_have_legends_and_the_uncertainty_box_a_hint(browser, stand_in_url, photo):
    path, (x, y) = photo
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, stand_in_url)
    upload(page, path)
    page.wait_for_selector("#canvas img")
    show_details(page)
    page.locator("#show_prob input").check()
    page.locator("#show_unc input").check()
    click_pixel(page, x, y)
    wait_for_clicks(page, 1)
    page.wait_for_selector("#unc_map img")
    assert "raise TTA views to ≥ 2" in page.inner_text("#status")
    _, height = Image.open(path).size
    assert natural_size(page, "#prob_map img")[1] > height  # the map and its colour legend below it
    for box in ("#show_prob input", "#show_unc input"):  # two quick toggles: each updates its own map only
        page.locator(box).uncheck()
    page.locator("#show_prob input").check()
    page.locator("#show_unc input").check()
    page.wait_for_selector("#prob_map img", state="visible")
    page.wait_for_selector("#unc_map img", state="visible")
    page.screenshot(path=ARTIFACTS / "07_maps_with_legend.png", full_page=True)
    context.close()


def test_real_pipeline_end_to_end_with_an_example_and_an_upload(browser, real_url, photo):
    path, (x, y) = photo
    width, height = Image.open(path).size
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, real_url)

    page.locator("img[src*='astronaut']").first.click()  # a shipped scikit-image example
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('astronaut.png (512×512)')")

    upload(page, path)
    page.wait_for_selector("#canvas img")
    show_details(page)
    click_pixel(page, x, y)
    first = wait_for_clicks(page, 1)
    assert first["mask_size"] == [width, height] and first["image_size"] == [width, height]
    assert first["embedding"] == "computed" and 0 <= first["mask_area"] <= width * height
    assert natural_size(page, "#canvas img") == [width, height]
    assert natural_size(page, "#mask img") == [width, height]

    click_pixel(page, 10, 10)
    second = wait_for_clicks(page, 2)
    assert second["embedding"] == "cached" and second["encoder_runs"] == first["encoder_runs"]
    assert "embedding cached" in page.inner_text("#status")
    page.locator("#show_prob input").check()
    page.wait_for_selector("#prob_map img")
    page.screenshot(path=ARTIFACTS / "08_real_pipeline.png", full_page=True)
    context.close()


def test_clicks_made_while_a_prediction_runs_are_all_applied_in_order(browser, slow_url, coffee_path):
    """Each prediction takes 1 s: three clicks 0.3 s apart, then a TTA change and at once a negative click. Every
    click is queued and applied, in order, each on the session the one before it left."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, slow_url)
    upload(page, coffee_path)
    page.wait_for_selector("#canvas img")
    show_details(page)
    targets = [(300, 200), (340, 230), (260, 180)]
    for x, y in targets:
        click_pixel(page, x, y)
        page.wait_for_timeout(300)
    applied = wait_for_clicks(page, 3)
    assert [c[:2] for c in applied["clicks"]] == [list(t) for t in targets] and applied["tta"] == 1
    page.screenshot(path=ARTIFACTS / "09_three_quick_clicks.png", full_page=True)

    page.locator("#tta input[type=number]").fill("4")  # reruns the last click at TTA 4 (1 s) ...
    page.locator("#tta input[type=number]").press("Enter")
    choose(page, space.NEGATIVE)  # ... while a negative click comes in
    click_pixel(page, 50, 60)
    final = wait_for_clicks(page, 4)
    assert final["clicks"][3] == [50, 60, -1] and final["tta"] == 4
    assert [c[:2] for c in final["clicks"][:3]] == [list(t) for t in targets]
    context.close()


def test_picking_another_answer_of_a_multi_map_model(browser, answers_app, coffee_path):
    """Three answers per click (disks of 30, 15 and 60 pixels, best first): the radio offers them, a pick becomes the
    mask and the next click starts from it; undo brings the pick back with its click."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    url, segmenter = answers_app
    page = open_page(context, url)
    upload(page, coffee_path)
    page.wait_for_selector("#canvas img")
    show_details(page)
    assert not page.locator("#answers").is_visible()
    click_pixel(page, 300, 200)
    first = wait_for_clicks(page, 1)
    assert first["answers"] == 3 and first["answer"] == 1
    page.wait_for_selector("#answers", state="visible")
    labels = [f"answer {k + 1} · predicted IoU {iou:.2f}" for k, iou in enumerate(IOUS)]
    options = page.locator("#answers input[type=radio]")
    assert options.count() == 3 and options.nth(0).is_checked()
    assert all(label in page.inner_text("#answers") for label in labels)

    page.locator("#answers").get_by_text(labels[2]).click()
    page.wait_for_function("() => JSON.parse(document.querySelector('#details textarea').value).answer === 3")
    picked = details(page)
    assert abs(picked["mask_area"] - np.pi * RADII[2] ** 2) < 0.05 * np.pi * RADII[2] ** 2
    assert picked["n_clicks"] == 1 and "answer 3 of 3" in page.inner_text("#status")
    page.screenshot(path=ARTIFACTS / "10_answer_picked.png", full_page=True)

    click_pixel(page, 10, 10)  # far outside every disk: a new click, its best answer, shown as picked
    second = wait_for_clicks(page, 2)
    assert second["answer"] == 1 and options.nth(0).is_checked()
    prev = segmenter.calls[-1]["prev_mask"]  # the picked answer, fed back
    assert abs(prev.sum() - np.pi * RADII[2] ** 2) < 0.05 * np.pi * RADII[2] ** 2
    page.click("#undo")
    undone = wait_for_clicks(page, 1)
    assert undone["answer"] == 3 and undone["mask_area"] == picked["mask_area"]
    page.wait_for_function("() => document.querySelectorAll('#answers input[type=radio]')[2].checked")
    context.close()


def test_a_pick_made_while_the_next_click_runs_is_not_applied_to_it(browser, slow_answers_url, coffee_path):
    """Each prediction takes 1.5 s: a click, then at once a pick among the previous click's answers. The pick comes
    after the click's prediction in the queue and names the click it was made on: it is not applied to the new
    answers, and the visitor is told to pick again."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, slow_answers_url)
    upload(page, coffee_path)
    page.wait_for_selector("#canvas img")
    show_details(page)
    click_pixel(page, 300, 200)
    wait_for_clicks(page, 1)
    page.wait_for_selector("#answers", state="visible")
    click_pixel(page, 100, 100)
    page.locator("#answers").get_by_text(f"answer 3 · predicted IoU {IOUS[2]:.2f}").click()
    second = wait_for_clicks(page, 2)
    page.wait_for_function("() => document.body.innerText.includes('belonged to an earlier click')")
    assert details(page) == second and second["answer"] == 1
    page.wait_for_function("() => document.querySelectorAll('#answers input[type=radio]')[0].checked")
    context.close()


def test_real_multi_map_model_end_to_end(browser, real_answers_url, coffee_path):
    """A real three-map model behind the real pipeline: its answers are offered, and a pick becomes the mask."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = open_page(context, real_answers_url)
    upload(page, coffee_path)
    page.wait_for_selector("#canvas img")
    show_details(page)
    click_pixel(page, 300, 200)
    first = wait_for_clicks(page, 1)
    assert first["answers"] == 3 and first["answer"] == 1 and 0 <= first["predicted_iou"] <= 1
    page.wait_for_selector("#answers", state="visible")
    options = page.locator("#answers label")
    assert options.count() == 3 and "answer 2 · predicted IoU" in options.nth(1).inner_text()
    options.nth(1).click()
    page.wait_for_function("() => JSON.parse(document.querySelector('#details textarea').value).answer === 2")
    assert "answer 2 of 3" in page.inner_text("#status")
    assert natural_size(page, "#mask img") == list(Image.open(coffee_path).size)
    page.screenshot(path=ARTIFACTS / "11_real_multi_map_model.png", full_page=True)
    context.close()
