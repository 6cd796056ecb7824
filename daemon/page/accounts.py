"""Who may use the page, and who they are: operator accounts, and the sessions they log in to.

Each operator has a name and a password (or token). The password alone logs in and says who
decided: every label from the page carries the name of the account whose session sent it. The
accounts come from a file or a systemd credential, one `name: password` per line:

    # operators of cell 1
    anna: correct-horse-battery-staple
    ben:  tr0ub4dor-and-3-more

A single shared token (`ui.token_file`) is one account named `operator`.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from lineside.daemon.config import ConfigError, Ui, read_secret
from lineside.daemon.transport.commands import MAX_BY_CHARS

MIN_PASSWORD = 12
SHARED_NAME = "operator"
SESSION_S = 12 * 3600


def parse(text: str, where: str) -> dict[str, str]:
    """`name: password` lines -> {name: password}; ConfigError naming `where` and the line."""
    accounts: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, password = line.partition(":")
        name, password = name.strip(), password.strip()
        at = f"{where} line {number}"
        if not colon or not name:
            raise ConfigError(f"{at}: expected 'name: password'")
        if len(name) > MAX_BY_CHARS:
            raise ConfigError(f"{at}: the name is longer than {MAX_BY_CHARS} characters")
        if len(password) < MIN_PASSWORD:
            raise ConfigError(f"{at}: {name}'s password must be at least {MIN_PASSWORD} characters")
        if name in accounts:
            raise ConfigError(f"{at}: {name} is given twice")
        if password in accounts.values():
            raise ConfigError(f"{at}: {name} has another operator's password (it says who)")
        accounts[name] = password
    if not accounts:
        raise ConfigError(f"{where}: no accounts ('name: password' lines)")
    return accounts


def load(ui: Ui) -> dict[str, str]:
    """The operators of `ui`'s accounts file or credential, or its shared token's one account."""
    if ui.accounts_file is not None or ui.accounts_credential is not None:
        text = read_secret("ui.accounts", ui.accounts_file, ui.accounts_credential) or ""
        where = "ui.accounts_file" if ui.accounts_file is not None else "ui.accounts_credential"
        return parse(text, where)
    token = read_secret("ui.token", ui.token_file, ui.token_credential) or ""
    if len(token) < MIN_PASSWORD:
        where = "ui.token_file" if ui.token_file is not None else "ui.token_credential"
        raise ConfigError(f"{where}: the token must be at least {MIN_PASSWORD} characters")
    return {SHARED_NAME: token}


@dataclass
class Sessions:
    """The accounts, and the sessions of those who logged in (cookie value -> name, expiry)."""

    accounts: dict[str, str]

    def __post_init__(self) -> None:
        self._open: dict[str, tuple[str, float]] = {}

    def who(self, password: str) -> str | None:
        """The operator whose password this is; every account is compared, in constant time."""
        found = None
        for name, secret in self.accounts.items():
            if hmac.compare_digest(password.encode(), secret.encode()):
                found = name
        return found

    def open(self, name: str) -> str:
        now = time.time()
        self._open = {s: v for s, v in self._open.items() if v[1] > now}
        session = secrets.token_urlsafe(32)
        self._open[session] = (name, now + SESSION_S)
        return session

    def name(self, session: str | None) -> str | None:
        """The operator of a live session, or None."""
        found = self._open.get(session or "")
        return found[0] if found and found[1] > time.time() else None

    def close(self, session: str | None) -> None:
        self._open.pop(session or "", None)
