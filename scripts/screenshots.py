"""Take the README's screenshots of the dashboard on the current store (run `make demo` first).

    .venv/bin/python scripts/screenshots.py --out docs/img

Every image README.md shows is listed in SHOTS (the script refuses to start otherwise). A page that
shows an error or a traceback instead of its chart ends the run with one line and exit status 1.
The store is the dashboard's: ``FAIRPRUNE_RESULTS`` and ``FAIRPRUNE_MODELS_DIR`` when set.
Uses Debian's /usr/bin/chromium through Playwright, like the browser test.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
# (file, page path, what the page shows when it worked); dataset.png is not in the README
SHOTS = [
    ("overview.png", "", ".js-plotly-plot"),
    ("sweep.png", "Sparsity_sweep", ".js-plotly-plot"),
    ("audit.png", "Audit", ".js-plotly-plot"),
    ("forgotten.png", "What_pruning_forgot", "[data-testid='stImage']"),
    ("methods.png", "Methods", ".js-plotly-plot"),
    ("dataset.png", "Dataset", "[data-testid='stImage']"),
]
# what Streamlit draws for an uncaught exception and for st.error
FAILED = "[data-testid='stException'], [data-testid='stAlertContentError']"
ERR_MISSING = "README.md shows {names} but SHOTS has no entry for it; add the page to SHOTS."
ERR_PAGE = "{name}: the page /{path} shows an error instead of its chart: {text}"
ERR_TIMEOUT = "{name}: the page /{path} showed no {selector} within {seconds} s."


class ShotFailed(RuntimeError):
    """A page did not show what it should; the message is one line."""


def readme_images() -> set[str]:
    text = (ROOT / "README.md").read_text()
    return set(re.findall(r"docs/img/([\w.-]+\.png)", text))


def shoot(page, url: str, out: Path, timeout_s: int) -> None:
    """Screenshot every page of SHOTS; raise ShotFailed on the first failure."""
    for name, path, selector in SHOTS:
        page.goto(f"{url}/{path}")
        try:
            page.wait_for_selector(f"{selector}, {FAILED}", timeout=timeout_s * 1000)
        except Exception:  # Playwright's TimeoutError
            raise ShotFailed(
                ERR_TIMEOUT.format(name=name, path=path, selector=selector, seconds=timeout_s)
            ) from None
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(1500)
        failed = page.locator(FAILED)
        if failed.count():
            text = " ".join(failed.first.inner_text().split())[:200]
            raise ShotFailed(ERR_PAGE.format(name=name, path=path, text=text))
        page.screenshot(path=str(out / name))
        print(out / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--width", type=int, default=1500)
    parser.add_argument("--timeout", type=int, default=180, help="seconds to wait for each page")
    args = parser.parse_args()
    missing = readme_images() - {name for name, _, _ in SHOTS}
    if missing:
        print(ERR_MISSING.format(names=", ".join(sorted(missing))), file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],  # fmt: skip
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 950})
            try:
                shoot(page, url, out, args.timeout)
            except ShotFailed as err:
                print(err, file=sys.stderr)
                return 1
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
