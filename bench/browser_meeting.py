"""A meeting in real browsers: four Chromium sessions clicking sidebar links at the same moment.

    python bench/browser_meeting.py [--sessions 4] [--rounds 8] [--json]

Issue #23's end-to-end check, on the store the environment points at (by default the demo's:
``python -m fairprune demo``), not the test fixture's: a dashboard server is started as
``bench/meeting.py`` starts it, then tests/app/test_browser.py's ``browser_meeting`` warms it (one
tab visits every page), opens the tabs at once and runs the rounds. It
prints median / p90 / worst seconds from each click to the frame that draws the page's first chart
(the browser's own clock), per page and over all clicks, and the verdict ("every click under
2 s"); the result goes to artifacts/browser_meeting.json, which ``bench/meeting.py``'s report
shows beside the websocket benchmark. The browsers share the machine's cores with the server.
Not a test: machines here are shared and noisy. Needs Debian's chromium
(``bash scripts/install-chromium.sh``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import meeting  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=4, help="browser sessions")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of simultaneous clicks")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from fairprune.paths import results_path
    from tests.app import test_browser

    store = results_path()
    problem = meeting._check_store(store)
    if problem:
        print(problem)
        return 2
    with meeting.serve(meeting.ARTIFACTS / "browser-meeting-server.log") as server:
        result = test_browser.browser_meeting(server.url, args.sessions, args.rounds)
    result["store"] = str(store)
    meeting.ARTIFACTS.mkdir(exist_ok=True)
    (meeting.ARTIFACTS / "browser_meeting.json").write_text(json.dumps(result, indent=1))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"store: {store} · load average {result['load_average_1min']:.1f}")
        print("\n".join(test_browser.meeting_lines(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
