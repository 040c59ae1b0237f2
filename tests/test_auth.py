"""auth: the roles file, roles from an ID token's claims, and who may do what."""

import pytest

from fairprune import auth
from fairprune.auth import (
    ERR_BAD_ROLES_FILE,
    ERR_FORBIDDEN,
    ERR_NO_ROLE,
    LOCAL_IDENTITY,
    NOBODY,
    Identity,
    load_roles,
    parse_roles,
    require,
    roles_for,
)
from fairprune.errors import FairpruneError

ROLES_TOML = """
[roles]
operator = ["Alice@Example.org"]
reviewer = ["bob@example.org", "group:review-board"]
viewer = ["*@example.org"]
"""


@pytest.fixture
def role_map(tmp_path):
    path = tmp_path / "roles.toml"
    path.write_text(ROLES_TOML)
    return load_roles(path)


def test_the_roles_file_is_read_and_normalised(role_map):
    assert role_map == {
        "viewer": ("*@example.org",),
        "reviewer": ("bob@example.org", "group:review-board"),
        "operator": ("alice@example.org",),
    }


@pytest.mark.parametrize(
    ("claims", "roles"),
    [
        ({"email": "alice@example.org", "email_verified": True}, {"operator", "viewer"}),
        ({"email": "ALICE@example.ORG"}, {"operator", "viewer"}),  # case-insensitive, no claim
        ({"email": "bob@example.org"}, {"reviewer", "viewer"}),
        ({"email": "carol@example.org"}, {"viewer"}),  # *@domain
        ({"email": "carol@sub.example.org"}, set()),  # a subdomain is another domain
        ({"email": "carol@example.org.evil.com"}, set()),
        ({"email": "dan@elsewhere.org", "groups": ["review-board"]}, {"reviewer"}),
        ({"email": "dan@elsewhere.org", "groups": "review-board"}, {"reviewer"}),  # a string
        ({"email": "dan@elsewhere.org", "groups": ["Review-Board"]}, set()),  # names are exact
        ({"email": "dan@elsewhere.org"}, set()),
        ({}, set()),
        # an address the provider says is unverified counts for nothing; groups still count
        ({"email": "alice@example.org", "email_verified": False}, set()),
        ({"email": "alice@example.org", "email_verified": "false"}, set()),
        ({"email": "bob@example.org", "email_verified": False, "groups": ["review-board"]},
         {"reviewer"}),
    ],
)  # fmt: skip
def test_roles_come_from_email_domain_and_groups(role_map, claims, roles):
    assert roles_for(claims, role_map) == frozenset(roles)


def test_permissions_every_role_reads_reviewers_decide_operators_operate():
    viewer = Identity("Vera", "v@example.org", frozenset({"viewer"}))
    reviewer = Identity("Rhea", "r@example.org", frozenset({"reviewer"}))
    operator = Identity("Otto", "o@example.org", frozenset({"operator"}))
    both = Identity("Bo", "b@example.org", frozenset({"reviewer", "operator"}))
    table = {
        p: [i.may(p) for i in (viewer, reviewer, operator, both, LOCAL_IDENTITY, NOBODY)]
        for p in auth.PERMISSIONS
    }
    assert table == {
        "read": [True, True, True, True, True, False],
        "decide": [False, True, False, True, True, False],
        "operate": [False, False, True, True, True, False],
    }
    require(both, "decide")
    require(LOCAL_IDENTITY, "operate")
    assert LOCAL_IDENTITY.actor == "local user" and LOCAL_IDENTITY.local


def test_a_refusal_is_one_line_naming_the_role_and_the_role_needed():
    viewer = Identity("Vera", "v@example.org", frozenset({"viewer"}))
    with pytest.raises(FairpruneError) as err:
        require(viewer, "operate", what="start a sweep")
    assert str(err.value) == ERR_FORBIDDEN.format(
        roles="viewer", what="start a sweep", needed="operator"
    )
    assert str(err.value) == (
        "your role (viewer) may not start a sweep; ask an administrator for the operator role."
    )
    with pytest.raises(FairpruneError) as err:
        require(NOBODY, "decide")
    assert str(err.value) == (
        "your role (none) may not record review decisions; ask an administrator for the "
        "reviewer role."
    )
    with pytest.raises(ValueError, match="unknown permission 'fly'"):
        require(viewer, "fly")
    assert ERR_NO_ROLE.format(email="x@y.org") == (
        "Your account (x@y.org) has no role on this dashboard; ask an administrator to add you "
        "to the roles file."
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[roles\n", "not TOML: "),
        ("[roles]\nadmin = ['a@b.org']\n", "unknown role 'admin'"),
        ("[roles]\nviewer = 'a@b.org'\n", "viewer is not a list"),
        ("[roles]\nviewer = ['alice']\n", "viewer holds 'alice', not an email, *@domain or"),
        ("[roles]\nviewer = ['a*@b.org']\n", "viewer holds 'a*@b.org': only a whole local part"),
        ("[roles]\nviewer = ['group:']\n", "viewer holds 'group:': a group needs a name"),
        ("[roles]\nviewer = [3]\n", "viewer holds 3, not an email"),
        ("[people]\nviewer = []\n", "unknown table 'people'"),
        ("title = 'x'\n", "unknown table 'title'"),
        ("", "no [roles] table"),
    ],
)
def test_a_bad_roles_file_is_one_line_naming_the_file(tmp_path, text, reason):
    path = tmp_path / "roles.toml"
    path.write_text(text)
    with pytest.raises(FairpruneError) as err:
        load_roles(path)
    message = str(err.value)
    head = ERR_BAD_ROLES_FILE.split("{reason}")[0].format(path=path)
    assert message.startswith(head + reason), message
    assert message.endswith("fix it: a [roles] table mapping viewer, reviewer and operator to "
                            "lists of emails, *@domain or group:NAME.")  # fmt: skip
    assert "\n" not in message


def test_a_missing_roles_file_says_so(tmp_path):
    with pytest.raises(FairpruneError) as err:
        load_roles(tmp_path / "nope.toml")
    assert str(err.value) == ERR_BAD_ROLES_FILE.format(
        path=tmp_path / "nope.toml", reason="No such file or directory"
    )


def test_roles_from_a_secrets_table_and_absent_roles_hold_nobody():
    role_map = parse_roles({"reviewer": ["group:board"]})
    assert role_map == {"viewer": (), "reviewer": ("group:board",), "operator": ()}
    assert roles_for({"groups": ["board"], "email": "x@y.org"}, role_map) == {"reviewer"}
