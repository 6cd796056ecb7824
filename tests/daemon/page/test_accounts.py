"""Operator accounts: a name per password, read from a file; every fault named by its line."""

from __future__ import annotations

import pytest

from lineside.daemon.config import ConfigError, Ui
from lineside.daemon.page import accounts

GOOD = """
# cell 1
anna: correct-horse-battery-staple
ben :  tr0ub4dor-and-3-more
"""

BAD = {
    "no colon": ("anna correct-horse-battery", "line 1: expected 'name: password'"),
    "no name": (": correct-horse-battery", "line 1: expected 'name: password'"),
    "short password": ("anna: short", "line 1: anna's password must be at least 12"),
    "name twice": (
        "anna: correct-horse-battery\nanna: another-long-secret",
        "line 2: anna is given twice",
    ),
    "shared password": (
        "anna: correct-horse-battery\nben: correct-horse-battery",
        "line 2: ben has another operator's password",
    ),
    "long name": ("x" * 65 + ": correct-horse-battery", "line 1: the name is longer than 64"),
    "nothing": ("# nobody yet\n", "no accounts"),
}


def test_accounts_are_read_with_comments_and_spaces_ignored():
    found = accounts.parse(GOOD, "ops")
    assert found == {"anna": "correct-horse-battery-staple", "ben": "tr0ub4dor-and-3-more"}


@pytest.mark.parametrize("text,message", BAD.values(), ids=BAD.keys())
def test_a_bad_accounts_file_is_refused_by_line(text, message):
    with pytest.raises(ConfigError, match=f"^ops{' ' if 'line' in message else ': '}"):
        accounts.parse(text, "ops")
    with pytest.raises(ConfigError) as err:
        accounts.parse(text, "ops")
    assert message in str(err.value)


def test_the_password_says_who_and_sessions_remember_it(tmp_path):
    path = tmp_path / "operators"
    path.write_text(GOOD)
    sessions = accounts.Sessions(accounts.load(Ui(accounts_file=path)))
    assert sessions.who("tr0ub4dor-and-3-more") == "ben"
    assert sessions.who("tr0ub4dor-and-3-mor") is None and sessions.who("") is None
    session = sessions.open("ben")
    assert sessions.name(session) == "ben" and sessions.name("forged") is None
    sessions.close(session)
    assert sessions.name(session) is None


def test_a_shared_token_is_one_account_named_operator(tmp_path, monkeypatch):
    (tmp_path / "ui-token").write_text("correct-horse-battery-staple\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert accounts.load(Ui(token_credential="ui-token")) == {
        "operator": "correct-horse-battery-staple"
    }
    (tmp_path / "ops").write_text("anna: correct-horse-battery-staple\n")
    assert accounts.load(Ui(accounts_credential="ops")) == {"anna": "correct-horse-battery-staple"}
