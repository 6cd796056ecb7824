"""Taking in new bundles on the box: check everything, then keep the active and previous ones.

Checks, in order: size, zip sanity, signature against the trusted keys (required when keys are
configured), file hashes, manifest schema, the model loads, its tensors match the manifest, and
the self-test scores within tolerance on this box's runtime. An installed bundle must also be no
older than the one it replaces (`created_at` in its signed manifest): going back takes a
rollback. Only a bundle that passes all of them is written (atomically) as the active one; the
one it replaces becomes the previous one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lineside.daemon.intake import selftest
from lineside.daemon.runtime import FeatureModel, Model, ModelError, load_model
from lineside.deploy import bundle as bundles
from lineside.deploy import signing
from lineside.deploy.bundle import Bundle, BundleError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loaded:
    bundle: Bundle
    model: Model | FeatureModel
    data: bytes

    @property
    def label(self) -> str:
        m = self.bundle.manifest.model
        return f"{m.name} {m.version}"

    @property
    def created(self) -> datetime:
        return created_at(self.bundle)


def created_at(b: Bundle) -> datetime:
    """When the trainer made the bundle (naive times are read as UTC)."""
    try:
        when = datetime.fromisoformat(b.manifest.model.created_at)
    except ValueError:
        raise BundleError(
            f"model.created_at {b.manifest.model.created_at!r} is not an ISO 8601 time"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class BundleStore:
    def __init__(
        self, store: Path, trusted_keys: Path | None, max_bytes: int, threads: int | None
    ) -> None:
        self.dir = Path(store)
        self.trusted_dir = trusted_keys
        self.max_bytes, self.threads = max_bytes, threads
        self.active_path = self.dir / "active.lsb"
        self.previous_path = self.dir / "previous.lsb"
        self._lock = threading.Lock()  # one install or rollback at a time

    def _trusted(self) -> dict | None:
        # Read on every check, so keys added or revoked on the box apply to the next bundle.
        if self.trusted_dir is None:
            return None
        try:
            return signing.load_trusted(self.trusted_dir)
        except signing.SignatureError as exc:
            raise BundleError(str(exc)) from None

    def vet(self, data: bytes) -> Loaded:
        """Every check; raises BundleError or ModelError naming the first that failed."""
        b = bundles.parse(data, self._trusted(), self.max_bytes)
        model = load_model(b, num_threads=self.threads)
        selftest.run(b, model)
        return Loaded(b, model, data)

    def active_is_newer(self, configured: Path) -> bool:
        """This box's active bundle was made after the configured one (both readable)."""
        try:
            trusted = self._trusted()
            active = bundles.parse(self.active_path.read_bytes(), trusted, self.max_bytes)
            other = bundles.parse(Path(configured).read_bytes(), trusted, self.max_bytes)
            return created_at(active) > created_at(other)
        except (OSError, BundleError):
            return False

    def startup(self, configured: Path, prefer_active: bool) -> Loaded:
        """The configured bundle, or with `prefer_active` this box's active one when it has one."""
        path = self.active_path if prefer_active and self.active_path.exists() else configured
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise BundleError(f"{path}: cannot read bundle ({exc.strerror})") from None
        try:
            loaded = self.vet(data)
        except (BundleError, ModelError) as exc:
            raise type(exc)(f"{path}: {exc}") from None
        if path != self.active_path:
            self._write_active(loaded.data)
        return loaded

    def install(self, data: bytes, running: Loaded) -> Loaded:
        """Vet `data` and make it the active bundle, unless it is older than `running`."""
        with self._lock:
            loaded = self.vet(data)
            if loaded.created < running.created:
                raise BundleError(
                    f"{loaded.label} was made {loaded.bundle.manifest.model.created_at}, before "
                    f"the running {running.label} ({running.bundle.manifest.model.created_at}); "
                    "going back to an older bundle takes a signed rollback"
                )
            self._write_active(data)
            return loaded

    def _write_active(self, data: bytes) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.active_path.exists():
            current = self.active_path.read_bytes()
            if current == data:
                return
            bundles.write_atomic(self.previous_path, current)
        bundles.write_atomic(self.active_path, data)

    def rollback(self) -> Loaded:
        """Make the previous bundle active again (after checking it again)."""
        with self._lock:
            if not self.previous_path.exists():
                raise BundleError("no previous bundle to roll back to")
            previous = self.previous_path.read_bytes()
            loaded = self.vet(previous)
            current = self.active_path.read_bytes()
            bundles.write_atomic(self.previous_path, current)
            bundles.write_atomic(self.active_path, previous)
            return loaded
