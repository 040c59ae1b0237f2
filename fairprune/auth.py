"""Who may do what on a dashboard with sign-in: roles from a TOML file and the ID token's claims.

A signed-in person is an ``Identity`` (name and email from the identity provider's ID token) with
the roles the deployer's roles file gives them. Every role reads; only a ``reviewer`` records
review decisions; only an ``operator`` starts and cancels sweeps, adds and removes models and
changes stores (``PERMISSIONS``). One person may hold several roles. A dashboard without sign-in
runs as ``LOCAL_IDENTITY``, which holds every role. This module knows nothing of Streamlit:
``fairprune.app.identity`` reads the signed-in user and calls it.

The roles file (``FAIRPRUNE_ROLES``, or ``[fairprune.roles]`` in Streamlit's secrets)::

    [roles]
    operator = ["alice@example.org"]
    reviewer = ["bob@example.org", "group:review-board"]
    viewer = ["*@example.org"]

An entry is an email (matched case-insensitively), ``*@domain`` (every address of the domain) or
``group:NAME`` (a name in the ID token's ``groups`` claim). An email counts only when the
provider has not said it is unverified (``email_verified`` false).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fairprune.errors import FairpruneError

ROLES = ("viewer", "reviewer", "operator")
"""The dashboard's roles, from reading only to running sweeps."""
PERMISSIONS = {
    "read": {"viewer", "reviewer", "operator"},
    "decide": {"reviewer"},
    "operate": {"operator"},
}
"""Permission → the roles that grant it."""
PERMISSION_WORDS = {
    "read": "read this dashboard",
    "decide": "record review decisions",
    "operate": "start or cancel sweeps, add or remove models or change stores",
}
"""How ``ERR_FORBIDDEN`` names what a permission allows, when the caller names nothing narrower."""
RoleMap = dict[str, tuple[str, ...]]
"""Role → its entries (emails lower-cased, ``*@domain``, ``group:NAME``), every role present."""

ERR_FORBIDDEN = "your role ({roles}) may not {what}; ask an administrator for the {needed} role."
ERR_NO_ROLE = (
    "Your account ({email}) has no role on this dashboard; ask an administrator to add you to "
    "the roles file."
)
ERR_BAD_ROLES_FILE = (
    "the roles file {path} cannot be used ({reason}); fix it: a [roles] table mapping viewer, "
    "reviewer and operator to lists of emails, *@domain or group:NAME."
)
ERR_UNKNOWN_PERMISSION = "unknown permission {value!r}; one of: read, decide, operate."


@dataclass(frozen=True)
class Identity:
    """Who is using the dashboard, and what they may do."""

    name: str  # the ID token's name ("local user" without sign-in; "" when signed out)
    email: str  # the ID token's email ("" without sign-in or when signed out)
    roles: frozenset[str]  # some of ROLES; empty: signed out, or nobody the roles file knows
    local: bool = False  # True only without sign-in (a local, single-user dashboard)

    @property
    def actor(self) -> str:
        """The name a decision or an operator action is recorded under: name, else email."""
        return self.name or self.email

    def may(self, permission: str) -> bool:
        """Whether one of this identity's roles grants ``permission`` (see ``PERMISSIONS``)."""
        return bool(self.roles & _granting(permission))


LOCAL_IDENTITY = Identity(name="local user", email="", roles=frozenset(ROLES), local=True)
"""The one user of a dashboard without sign-in: every role."""
NOBODY = Identity(name="", email="", roles=frozenset())
"""A visitor who has not signed in (or a caller outside any session while sign-in is on)."""


def _granting(permission: str) -> set[str]:
    if permission not in PERMISSIONS:
        raise ValueError(ERR_UNKNOWN_PERMISSION.format(value=permission))
    return PERMISSIONS[permission]


def _ordered(roles) -> list[str]:
    return [r for r in ROLES if r in roles]


def require(identity: Identity, permission: str, what: str | None = None) -> None:
    """Refuse, with one line, an identity whose roles do not grant ``permission``.

    Parameters
    ----------
    identity : Identity
    permission : {"read", "decide", "operate"}
    what : str, optional
        What was refused, for the message ("start a sweep"); default: all the permission allows
        (``PERMISSION_WORDS``).

    Raises
    ------
    FairpruneError
        ``ERR_FORBIDDEN``.
    """
    granting = _granting(permission)
    if identity.roles & granting:
        return
    roles = ", ".join(_ordered(identity.roles)) or "none"
    needed = " or ".join(_ordered(granting))
    raise FairpruneError(
        ERR_FORBIDDEN.format(roles=roles, what=what or PERMISSION_WORDS[permission], needed=needed)
    )


def _bad(path: object, reason: str) -> FairpruneError:
    return FairpruneError(ERR_BAD_ROLES_FILE.format(path=path, reason=reason))


def _entry(value: object, role: str, path: object) -> str:
    """One roles-file entry, checked and normalised (emails and domains lower-cased)."""
    if not isinstance(value, str) or not value.strip():
        raise _bad(path, f"{role} holds {value!r}, not an email, *@domain or group:NAME")
    value = value.strip()
    if value.startswith("group:"):
        if not value[len("group:") :].strip():
            raise _bad(path, f"{role} holds {value!r}: a group needs a name")
        return "group:" + value[len("group:") :].strip()
    local, at, domain = value.partition("@")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in value):
        raise _bad(path, f"{role} holds {value!r}, not an email, *@domain or group:NAME")
    if "*" in domain or ("*" in local and local != "*"):
        raise _bad(path, f"{role} holds {value!r}: only a whole local part may be *")
    return value.lower()


def parse_roles(table: object, source: object = "[fairprune.roles]") -> RoleMap:
    """Check a roles table (role → list of entries) and normalise it.

    Parameters
    ----------
    table : mapping
        The ``[roles]`` table of a roles file (or ``[fairprune.roles]`` of Streamlit's secrets).
    source : object
        Where it came from, for the error message.

    Returns
    -------
    RoleMap
        Every role of ``ROLES``, with its entries (an absent role holds none).

    Raises
    ------
    FairpruneError
        ``ERR_BAD_ROLES_FILE``: not a table, an unknown role, or an entry that is no email,
        ``*@domain`` or ``group:NAME``.
    """
    if not isinstance(table, Mapping):
        raise _bad(source, "no [roles] table")
    unknown = sorted(set(table) - set(ROLES))
    if unknown:
        raise _bad(source, f"unknown role {', '.join(map(repr, unknown))}")
    out: RoleMap = {}
    for role in ROLES:
        entries = table.get(role, [])
        if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
            raise _bad(source, f"{role} is not a list")
        out[role] = tuple(_entry(e, role, source) for e in entries)
    return out


def load_roles(path: str | Path) -> RoleMap:
    """Read a roles file: a TOML file with a ``[roles]`` table (module docstring).

    Parameters
    ----------
    path : path
        The roles file (``FAIRPRUNE_ROLES``).

    Returns
    -------
    RoleMap

    Raises
    ------
    FairpruneError
        ``ERR_BAD_ROLES_FILE``: missing, unreadable, not TOML, or not a valid roles table.
    """
    path = Path(os.path.expanduser(str(path)))
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise _bad(path, exc.strerror or type(exc).__name__) from None
    except tomllib.TOMLDecodeError as exc:
        raise _bad(path, f"not TOML: {str(exc).splitlines()[0]}") from None
    extra = sorted(set(data) - {"roles"})
    if extra:
        raise _bad(path, f"unknown table {', '.join(map(repr, extra))}")
    return parse_roles(data.get("roles"), path)


def _groups(claims: Mapping) -> set[str]:
    groups = claims.get("groups")
    if isinstance(groups, str):
        return {groups}
    if isinstance(groups, (list, tuple, set, frozenset)):
        return {g for g in groups if isinstance(g, str)}
    return set()


def _verified_email(claims: Mapping) -> str:
    """The claims' email, lower-cased, unless the provider says it is not verified."""
    email = claims.get("email")
    verified = claims.get("email_verified")
    if not isinstance(email, str) or verified is False or str(verified).lower() == "false":
        return ""
    return email.strip().lower()


def roles_for(claims: Mapping, role_map: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """The roles the roles file gives the person an ID token describes (the union of matches).

    Parameters
    ----------
    claims : mapping
        The ID token's claims (``st.user``): ``email``, ``email_verified``, ``groups``.
    role_map : RoleMap
        From ``load_roles`` or ``parse_roles``.

    Returns
    -------
    frozenset of str
        Some of ``ROLES``; empty for a person the file does not name.
    """
    email = _verified_email(claims)
    domain = email.partition("@")[2]
    groups = _groups(claims)
    roles = set()
    for role, entries in role_map.items():
        for entry in entries:
            if entry.startswith("group:"):
                hit = entry[len("group:") :] in groups
            elif entry.startswith("*@"):
                hit = bool(domain) and domain == entry[2:].lower()
            else:
                hit = bool(email) and email == entry.strip().lower()
            if hit:
                roles.add(role)
                break
    return frozenset(roles)
