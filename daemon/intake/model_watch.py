"""Watch the model folder for bundles that maintenance staff drop in.

Polling, so it works on every filesystem (network shares included): a file is taken only when its
size and modification time are the same in two polls in a row, so a half-copied bundle is never
read. Hidden files (a copier's temporary names) are ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

Signature = tuple[str, int, int]  # name, size, mtime in ns


class FolderWatch:
    def __init__(
        self,
        folder: Path,
        interval_s: float,
        on_bundle: Callable[[Path, bytes], None],
        newer_than_ns: int = 0,
    ) -> None:
        self.folder, self.interval_s, self.on_bundle = Path(folder), interval_s, on_bundle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-watch", daemon=True)
        # Files already there at start were dealt with by the start-up, unless they are newer
        # than the bundle the box is running (dropped while the daemon was down).
        self._handled = {s for s in self._scan() if s[2] <= newer_than_ns}
        self._last_seen: set[Signature] = set()

    def _scan(self) -> set[Signature]:
        found = set()
        try:
            for p in self.folder.glob("*.lsb"):
                if p.name.startswith("."):
                    continue
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                found.add((p.name, st.st_size, st.st_mtime_ns))
        except OSError as exc:
            log.warning("cannot list the model folder %s: %s", self.folder, exc)
        return found

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            seen = self._scan()
            stable = (seen & self._last_seen) - self._handled
            self._last_seen = seen
            for sig in sorted(stable, key=lambda s: s[2]):
                self._handled.add(sig)
                path = self.folder / sig[0]
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    log.warning("cannot read %s: %s", path, exc)
                    continue
                self.on_bundle(path, data)
