"""Checks of a valid configuration against this box: the files it names can be read and the
places it writes to can be written. `check-config`, `run` and a reload all call `check`, so what
`check-config` passes, `run` does not refuse for a file (and a reload never half-starts).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from lineside.daemon.config import Config, ConfigError
from lineside.daemon.sinks.review import folder_of
from lineside.daemon.transport.link import read_password
from lineside.deploy import signing


def check(cfg: Config) -> None:
    """Raise ConfigError naming the key, the path and what is wrong with it."""
    tls = cfg.mqtt.tls
    for key in ("ca", "cert", "key"):
        path = getattr(tls, key) if tls else None
        if path is not None:
            _readable(f"mqtt.tls.{key}", path)
    if cfg.mqtt.username:
        read_password(cfg.mqtt)
    if cfg.model.trusted_keys is not None:
        try:
            signing.load_trusted(cfg.model.trusted_keys)
        except signing.SignatureError as exc:
            raise ConfigError(f"model.trusted_keys: {exc}") from None
    _writable_file("outbox.path", cfg.outbox.path)
    _writable_dir("model.store", cfg.model.store)
    if cfg.review.enabled:
        _writable_dir("review.path", folder_of(cfg.review.path, cfg.outbox.path))
    _plant_links(cfg)
    if cfg.source.kind == "genicam":
        _aravis()


def _aravis() -> None:
    """A GenICam source needs Aravis through GObject introspection (the `genicam` extra)."""
    try:
        from lineside.daemon.capture.genicam import aravis

        aravis()
    except (ImportError, ValueError) as exc:
        raise ConfigError(
            f"source.genicam: needs Aravis ({exc}): apt-get install gir1.2-aravis-0.8 and "
            "pip install 'lineside[genicam]'"
        ) from None


# Optional sections and the package each needs (the extra that installs it).
EXTRAS = {"sparkplug": "google.protobuf", "opcua": "asyncua", "ui": "starlette", "plc": "pymodbus"}


def _plant_links(cfg: Config) -> None:
    """Sparkplug, OPC UA, the page and the PLC need their extras; OPC UA its certificate files."""
    for section, module in EXTRAS.items():
        wanted = getattr(cfg, section) is not None
        if section == "plc" and wanted:
            wanted = cfg.plc.protocol == "modbus"  # over OPC UA, the opcua extra serves it
        if wanted and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"{section}: needs the '{section}' extra: pip install 'lineside[{section}]'"
            )
    if cfg.ui is not None:  # its extra is there: checked above
        from lineside.daemon.page import accounts

        accounts.load(cfg.ui)
    if cfg.opcua is not None:
        _readable("opcua.certificate", cfg.opcua.certificate)
        _readable("opcua.private_key", cfg.opcua.private_key)
        if not Path(cfg.opcua.trusted_clients).is_dir():
            raise ConfigError(f"opcua.trusted_clients: {cfg.opcua.trusted_clients}: not a folder")


def _readable(key: str, path: Path) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{key}: {path}: cannot read ({exc.strerror})") from None


def _writable_dir(key: str, path: Path) -> None:
    """`path` is a writable folder, or can be made as one under a writable folder."""
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.is_symlink() or existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}: {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}: {path}: {existing} is not writable")


def _writable_file(key: str, path: Path) -> None:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{key}: {path} is a folder, not a file")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise ConfigError(f"{key}: {path} is not readable and writable")
    _writable_dir(key, path.parent)
