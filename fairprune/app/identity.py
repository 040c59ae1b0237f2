"""Who is using the dashboard: Streamlit's sign-in (``st.login``, ``st.user``) and the roles file.

Sign-in is on when Streamlit's secrets hold an ``[auth]`` section (an OpenID Connect provider);
then every page asks for it (``gate``), and ``current()`` is the signed-in person with the roles
the roles file gives them (``fairprune.auth``): the file named by ``FAIRPRUNE_ROLES``, else
``[fairprune.roles]`` in the secrets (a table of roles, or the path of a roles file). Without
``[auth]`` the dashboard is local and single-user, as before sign-in existed: ``current()`` is
``auth.LOCAL_IDENTITY``, which holds every role, and the sidebar says so.

The backend functions that act (``jobs.start_sweep``, a job's cancel, ``demo_job.start_demo``,
the Models page's add and remove in ``api``, ``review.record_decision``) call ``current()``
themselves, so a page that forgot to hide a button still cannot act. Outside a script run (a
test, the CLI, a background thread) ``current()`` still answers: the local user without sign-in,
nobody (no role) with it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping

import streamlit as st

from fairprune import auth
from fairprune.errors import FairpruneError

log = logging.getLogger(__name__)

ROLES_ENV = "FAIRPRUNE_ROLES"
LOCAL_MODE = "local mode: no sign-in"
SIGNED_IN = "Signed in as {name} ({email}) · {roles}"
ERR_NO_ROLES_FILE = (
    "sign-in is on but no roles file is set: set FAIRPRUNE_ROLES to a roles file (TOML), or add "
    "[fairprune.roles] to .streamlit/secrets.toml."
)
ERR_BAD_SECRETS = (
    "the dashboard's secrets file cannot be read ({reason}); fix .streamlit/secrets.toml: "
    "sign-in stays off until it can be read, and nobody can use the dashboard meanwhile."
)
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#~$|])")  # what Markdown would not show as typed
_role_maps: dict[tuple, auth.RoleMap] = {}


def _secrets() -> Mapping:
    """Streamlit's secrets (empty when there is no secrets file); one that exists but cannot be
    read refuses everything, never silently turns sign-in off."""
    from streamlit import config

    try:
        len(st.secrets)  # reads the files (once; again while there are none)
        return st.secrets
    except FileNotFoundError as exc:  # StreamlitSecretNotFoundError: none, or unreadable
        if any(os.path.exists(p) for p in config.get_option("secrets.files") or ()):
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise FairpruneError(ERR_BAD_SECRETS.format(reason=reason)) from None
        return {}


def auth_enabled() -> bool:
    """Whether sign-in is on: Streamlit's secrets have an ``[auth]`` section."""
    return "auth" in _secrets()


def providers() -> list[str | None]:
    """The identity providers ``[auth]`` names: None for the default one (``client_id`` in
    ``[auth]`` itself), then each ``[auth.NAME]`` table with a ``client_id``."""
    section = _secrets().get("auth", {})
    named = [k for k, v in section.items() if isinstance(v, Mapping) and "client_id" in v]
    return ([None] if "client_id" in section or not named else []) + named


def role_map() -> auth.RoleMap:
    """The roles file: ``FAIRPRUNE_ROLES`` (a TOML path), else ``[fairprune.roles]`` in the
    secrets (a table of roles, or a path). Read again when the file changes.

    Raises
    ------
    FairpruneError
        ``ERR_NO_ROLES_FILE`` when none is set, ``auth.ERR_BAD_ROLES_FILE`` when it is unusable.
    """
    path = os.environ.get(ROLES_ENV, "").strip()
    if not path:
        setting = _secrets().get("fairprune", {}).get("roles")
        if isinstance(setting, Mapping):
            return auth.parse_roles(setting.to_dict() if hasattr(setting, "to_dict") else setting)
        if not isinstance(setting, str) or not setting.strip():
            raise FairpruneError(ERR_NO_ROLES_FILE)
        path = setting.strip()
    path = os.path.expanduser(path)
    try:
        stat = os.stat(path)
        key = (path, stat.st_mtime_ns, stat.st_size)
    except OSError:
        key = None
    if key is None or key not in _role_maps:
        loaded = auth.load_roles(path)  # a missing file fails here, with the path in the line
        if len(_role_maps) > 16:
            _role_maps.clear()
        _role_maps[key] = loaded
    return _role_maps[key]


def _in_script_run() -> bool:
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    return get_script_run_ctx(suppress_warning=True) is not None


def signed_in() -> bool:
    """Whether sign-in is on and this session's user has signed in."""
    return auth_enabled() and _in_script_run() and bool(st.user.get("is_logged_in", False))


def current() -> auth.Identity:
    """This session's identity: ``auth.LOCAL_IDENTITY`` without sign-in; with it, the signed-in
    person and their roles, or ``auth.NOBODY`` (no roles) when nobody has signed in or there is
    no session (a test, the CLI, a background thread).

    Raises
    ------
    FairpruneError
        A roles file that is not set or unusable (``role_map``), or an unreadable secrets file.
    """
    if not auth_enabled():
        return auth.LOCAL_IDENTITY
    if not signed_in():
        return auth.NOBODY
    claims = st.user.to_dict()
    name = str(claims.get("name") or claims.get("preferred_username") or "").strip()
    email = str(claims.get("email") or "").strip()
    return auth.Identity(name=name, email=email, roles=auth.roles_for(claims, role_map()))


def may(permission: str) -> bool:
    """Whether this session's identity may ``permission`` (False when the roles file is broken:
    ``gate`` says why)."""
    try:
        return current().may(permission)
    except FairpruneError:
        return False


def admitted() -> bool:
    """Whether the pages may run for this session: no sign-in, or signed in with a role."""
    try:
        return bool(current().roles)
    except FairpruneError:
        return False


def gate() -> None:
    """End the run unless this session may see the dashboard (call before a page runs).

    Signed out: only a "Sign in" button (key ``auth_login``) that calls ``st.login``. Signed in
    without a role: ``auth.ERR_NO_ROLE`` and a "Log out" button (key ``auth_logout``). A broken
    roles or secrets file: its one line. Without sign-in this returns at once.
    """
    try:
        if not auth_enabled():
            return
        me = current()
    except FairpruneError as exc:
        st.error(str(exc))
        st.stop()
    if not signed_in():
        names = providers()
        provider = names[0]
        if len(names) > 1:
            provider = st.selectbox("Identity provider", names, key="auth_provider")
        if st.button("Sign in", key="auth_login", type="primary"):
            st.login(provider) if provider else st.login()
        st.stop()
    if not me.roles:
        st.error(auth.ERR_NO_ROLE.format(email=me.email or me.name or "no email"))
        if st.button("Log out", key="auth_logout"):
            st.logout()
        st.stop()


def plain(text: str) -> str:
    """``text`` shown as is in Markdown (a name with ``*`` or ``_`` stays a name)."""
    return _MARKDOWN.sub(r"\\\1", text)


def identity_line(identity: auth.Identity) -> str:
    """The sidebar's line: ``Signed in as NAME (EMAIL) · ROLES``, or ``LOCAL_MODE``."""
    if identity.local:
        return LOCAL_MODE
    roles = ", ".join(r for r in auth.ROLES if r in identity.roles)
    return SIGNED_IN.format(name=identity.actor, email=identity.email, roles=roles)


def sidebar() -> None:
    """Who is signed in (and a "Log out" button, key ``auth_logout``), or "local mode"; draw it
    inside ``st.sidebar``."""
    me = current()
    st.caption(plain(identity_line(me)))
    if not me.local and st.button("Log out", key="auth_logout"):
        st.logout()


def actor(identity: auth.Identity | None = None) -> tuple[str, str]:
    """(actor, actor_email) an operator action or a decision is recorded under."""
    me = identity or current()
    return me.actor or "unknown", me.email


def record_action(location, action: str, subject: str, detail: str = "") -> None:
    """Append an operator action to the results store at ``location``, as this session's
    identity (``ResultsStore.record_action``: append-only, who and when)."""
    from fairprune.sweep.results import ResultsStore

    name, email = actor()
    ResultsStore(location).record_action(
        actor=name, actor_email=email, action=action, subject=subject, detail=detail
    )
