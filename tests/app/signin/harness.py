"""What the sign-in test needs besides a browser: a local OpenID provider, the dashboard's
secrets and roles files, and a spy on the page's Streamlit websocket that can send a forged rerun.

The provider is oidc-provider-mock (its Flask app served on a thread of the test process; any
client id and secret accepted, no registration, no nonce required). Its users are predefined:
its authorization form shows one button per user, named by the subject, here the email. The
dashboard's server is the one tests/app/test_browser.py starts; the secrets and roles files
reach it through the environment (``STREAMLIT_SECRETS_FILES``, ``FAIRPRUNE_ROLES``), and
``redirect_uri`` leaves the port to Streamlit (``{port}``).
"""

import base64
import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROLES_FILE = Path(__file__).with_name("roles.toml")
FORGETFUL_PAGE = Path(__file__).with_name("forgetful_page.py")
# subject (= email) -> name; the first three hold a role in roles.toml, the last none
USERS = {
    "viewer@example.org": "Vera Viewer",
    "reviewer@example.org": "Rhea Reviewer",
    "operator@example.org": "Otto Operator",
    "nobody@elsewhere.org": "Nemo Nobody",
}


@contextlib.contextmanager
def provider() -> Iterator[str]:
    """A local OpenID provider knowing ``USERS``, on a free port; yields its issuer URL.

    (The package's own ``run_server_in_thread`` gives its server 1.5 s to stop and raises after
    that, which a loaded machine can exceed.)
    """
    import werkzeug.serving
    from oidc_provider_mock import User, app

    users = [
        User(sub=email, claims={"email": email, "email_verified": True, "name": name})
        for email, name in USERS.items()
    ]
    server = werkzeug.serving.make_server("localhost", 0, app(user_claims=users), threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(30)
        server.server_close()


def write_secrets(folder: Path, issuer: str) -> Path:
    """A secrets.toml whose ``[auth]`` section signs in with ``issuer``; returns its path."""
    path = folder / "secrets.toml"
    path.write_text(
        "[auth]\n"
        'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "fairprune-signin-test"\n'
        f'client_secret = "{secrets.token_hex(16)}"\n'
        f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n'
    )
    return path


# Keeps the page's Streamlit websocket, the last messages it sends and every small one it
# receives (a run's start and end, deltas; not charts' data); everything passes untouched.
SPY = """(() => {
  const Native = window.WebSocket;
  const fp = window.__fp = {ws: null, sent: [], got: []};
  const bytes = d => d instanceof ArrayBuffer ? new Uint8Array(d)
    : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  class Spy extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      if (String(url).includes("/_stcore/stream")) {
        fp.ws = this;
        this.addEventListener("message", e => {
          if (e.data.byteLength < 65536) fp.got.push(bytes(e.data));
        });
      }
    }
    send(data) {
      if (this === fp.ws) { fp.sent.push(bytes(data).slice()); fp.sent = fp.sent.slice(-20); }
      super.send(data);
    }
  }
  window.WebSocket = Spy;
})();"""

_B64 = "list => list.map(b => btoa(Array.from(b, c => String.fromCharCode(c)).join('')))"


def _messages(page, which: str, start: int = 0) -> list[bytes]:
    got = page.evaluate(f"({_B64})(window.__fp.{which}.slice({start}))")
    return [base64.b64decode(m) for m in got]


def last_rerun(page):
    """The last rerun request the page's front end sent (a ``ClientState``)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    for raw in reversed(_messages(page, "sent")):
        msg = BackMsg.FromString(raw)
        if msg.WhichOneof("type") == "rerun_script":
            return msg.rerun_script
    raise AssertionError("the page sent no rerun request")


def _received(page, start: int = 0) -> list:
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    return [ForwardMsg.FromString(raw) for raw in _messages(page, "got", start)]


def script_hashes(page) -> tuple[str, str]:
    """(the main script's hash, the current page's): a widget's id is computed with the hash of
    the script that draws it. The page's is in the navigation the last run sent (a session's
    start names the main script's hash as the page's until the page is known)."""
    received = _received(page)
    main = next(m.new_session.main_script_hash for m in reversed(received)
                if m.WhichOneof("type") == "new_session")  # fmt: skip
    current = next((m.navigation.page_script_hash for m in reversed(received)
                    if m.WhichOneof("type") == "navigation"), main)  # fmt: skip
    return main, current


def received_widget_ids(page) -> set[str]:
    """The ids of the widgets in the last deltas the page received."""
    ids = set()
    for msg in _received(page):
        if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            kind = element.WhichOneof("type")
            if kind and hasattr(getattr(element, kind), "id"):
                ids.add(getattr(element, kind).id)
    return ids


def button_id(key: str, script_hash: str, kind: str = "button") -> str:
    """The id Streamlit gives a keyed button on the page (or main script) ``script_hash``: a
    keyed button's id depends only on its kind, its key and the script it is drawn by."""
    from streamlit.elements.lib.utils import _compute_element_id

    return _compute_element_id(kind, key, active_script_hash=script_hash)


def forget_received(page) -> None:
    """Drop the messages the page has received so far (``wait_run`` then waits for a new run)."""
    page.evaluate("() => { window.__fp.got = []; }")


def wait_run(page, timeout_s: float = 90.0) -> None:
    """Wait until a whole script run (not a fragment's) has finished since the page was opened
    or since ``forget_received``."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    deadline, seen = time.monotonic() + timeout_s, 0
    while time.monotonic() < deadline:
        new = _received(page, seen)
        seen += len(new)
        if any(m.WhichOneof("type") == "script_finished"
               and m.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY for m in new):  # fmt: skip
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"no script run finished within {timeout_s} s")


def send_trigger(page, widget_id: str, wait: bool = True) -> None:
    """Send, on the page's own websocket, its last rerun request with ``widget_id`` pressed (what
    a click on that button would send, whether or not the page drew the button); ``wait``: until
    the script run it asks for has finished."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    state = last_rerun(page)
    state.page_script_hash = script_hashes(page)[1]  # the page's first request names none
    state.is_auto_rerun = False
    state.fragment_id = ""
    pressed = state.widget_states.widgets.add()
    pressed.id = widget_id
    pressed.trigger_value = True
    msg = BackMsg()
    msg.rerun_script.CopyFrom(state)
    forget_received(page)
    page.evaluate(
        "b64 => window.__fp.ws.send(Uint8Array.from(atob(b64), c => c.charCodeAt(0)))",
        base64.b64encode(msg.SerializeToString()).decode(),
    )
    if wait:
        wait_run(page)
