"""Walk through the Space as a person would, in a real browser, and save a screenshot of every step.

    python scripts/space_walkthrough.py                       # the embedded default model -> docs/space/
    python scripts/space_walkthrough.py --model FOLDER --out DIR --example coffee --click 300,200 --negative 350,300

Serves the Space (`hf_iis.space`, what `spaces/app.py` starts) on 127.0.0.1, drives Debian's chromium through
playwright (the same helpers as tests/test_space_browser.py): open the page, pick a scikit-image example, a positive
click on the object, a negative click on the background, 8 TTA views, the probability and uncertainty maps, undo,
reset, and a corrupt upload. Each step prints what the page reported (clicks, mask area, time, embedding cached or
not) and writes NN_step.jpg.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the browser helpers live with the browser tests
sys.path.insert(1, str(REPO))  # ... and import `tests.conftest` as pytest (rootdir on the path) lets them

from test_space_browser import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    choose,
    click_pixel,
    details,
    open_page,
    serve,
    show_details,
    wait_for_clicks,
)

from hf_iis import space  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the embedded model)")
    parser.add_argument("--example", default="astronaut", help="one of the Space's scikit-image examples")
    parser.add_argument("--click", default="255,120", help="X,Y of the positive click in the example")
    parser.add_argument("--negative", default="405,40", help="X,Y of the negative click")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "space")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        parser.error(f"chromium not found at {CHROMIUM} (make browser)")
    from playwright.sync_api import sync_playwright

    pos = tuple(int(v) for v in args.click.split(","))
    neg = tuple(int(v) for v in args.negative.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    demo = serve(model=args.model)
    step = 0

    def shot(page, name: str) -> None:
        nonlocal step
        step += 1
        path = args.out / f"{step:02d}_{name}.jpg"
        page.screenshot(path=path, full_page=True, type="jpeg", quality=80)
        status = page.inner_text("#status").replace("\n", " ")
        print(f"{path.name}: {status}")

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = open_page(browser.new_context(viewport={"width": 1280, "height": 1000}), demo.local_url)
            shot(page, "loaded")
            page.locator(f"img[src*='{args.example}']").first.click()
            page.wait_for_function("(n) => document.querySelector('#status').innerText.includes(n)",
                                   arg=f"{args.example}.png")
            page.wait_for_selector("#canvas img")
            show_details(page)
            shot(page, "example_picked")
            click_pixel(page, *pos)
            first = wait_for_clicks(page, 1)
            shot(page, "positive_click")
            choose(page, space.NEGATIVE)
            click_pixel(page, *neg)
            second = wait_for_clicks(page, 2)
            shot(page, "negative_click")
            page.locator("#tta input[type=number]").fill("8")
            page.locator("#tta input[type=number]").press("Enter")
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('TTA 8')")
            scaled = details(page)
            shot(page, "tta8")
            page.locator("#show_prob input").check()
            page.locator("#show_unc input").check()
            page.wait_for_selector("#unc_map img")
            shot(page, "probability_and_uncertainty")
            page.click("#undo")
            wait_for_clicks(page, 1)
            shot(page, "undo")
            page.click("#reset")
            wait_for_clicks(page, 0)
            shot(page, "reset")
            broken = Path(tempfile.mkdtemp()) / "broken.jpg"
            broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
            page.locator("#upload input[type=file]").set_input_files(str(broken))
            page.wait_for_function("() => document.querySelector('#status').innerText.includes('broken.jpg')")
            shot(page, "corrupt_upload")
            browser.close()
    finally:
        demo.close()
    keys = ("n_clicks", "tta", "mask_area", "mask_at_last_click", "seconds", "embedding", "encoder_runs")
    summary = {name: {k: d.get(k) for k in keys}
               for name, d in (("positive", first), ("negative", second), ("tta8", scaled))}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
