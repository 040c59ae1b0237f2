"""The first-view pause side by side: every dashboard page opened in a new tab, with the pause
off and as shipped (not a test: machines here are shared and noisy).

    python bench/pages.py [--rounds 3] [--json]

Two dashboard servers read the same store (the one the environment points at, by default the
demo's): one with ``FAIRPRUNE_FIRST_VIEW_PAUSE=0``, one as shipped. Each round visits every page
on both, the two visits of a page back to back (the order alternating by round), each in a new
browser context whose cache already holds Streamlit's front end. Per page, on the browser's own
clock from the start of the navigation (medians over the rounds):

- first chart: the animation frame that draws the page's first chart (the Models page: its
  table; the Report page: its download button), as tests/app/test_browser.py times it;
- whole page: the page's last change to the document before its requests settle.

Needs Debian's chromium (``bash scripts/install-chromium.sh``) and a store with a sweep in it
(``python -m fairprune demo``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.app.test_browser import ARGS, CHROMIUM, PAGES, _first_chart, _new_page, _serve, _settle  # noqa: E402

SIDES = (("off", "0"), ("shipped", None))


def visit(browser, url: str, path: str, selector: str) -> tuple[float, float]:
    """(first chart, whole page) in seconds on the browser's clock, in a new session."""
    page = _new_page(browser)
    try:
        _first_chart(page, url, "", ".js-plotly-plot")  # the front end into the browser's cache
        _settle(page)
        _, first = _first_chart(page, url, path, selector)
        _settle(page)
        return first, round(page.evaluate("() => window.__fpLast"), 2)
    finally:
        page.context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    seen: dict = {side: {name: [] for name, *_ in PAGES} for side, _ in SIDES}
    with contextlib.ExitStack() as stack:
        urls = {side: stack.enter_context(_serve(pause=pause)) for side, pause in SIDES}
        pw = stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for url in urls.values():  # warm both servers: imports, dataset, caches
            for _name, path, selector in PAGES:
                visit(browser, url, path, selector)
        for r in range(args.rounds):
            for name, path, selector in PAGES:
                for side, _ in SIDES[:: 1 if r % 2 == 0 else -1]:
                    seen[side][name].append(visit(browser, urls[side], path, selector))
        browser.close()
    result = {
        side: {
            name: {"first_chart_s": statistics.median(f for f, _ in v),
                   "whole_page_s": statistics.median(w for _, w in v), "samples": v}
            for name, v in pages.items()
        }
        for side, pages in seen.items()
    }  # fmt: skip
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'page':<20} {'first chart: off → shipped':>28} {'whole page: off → shipped':>28}")
    for name, *_ in PAGES:
        off, on = result["off"][name], result["shipped"][name]
        print(f"{name:<20} {off['first_chart_s']:>10.2f} s → {on['first_chart_s']:.2f} s "
              f"({on['first_chart_s'] / off['first_chart_s']:.2f}×) {off['whole_page_s']:>8.2f} s → "
              f"{on['whole_page_s']:.2f} s ({on['whole_page_s'] / off['whole_page_s']:.2f}×)")  # fmt: skip
    print(f"medians of {args.rounds} new-tab visits per page and side, browser's clock")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
