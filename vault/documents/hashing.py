"""SHA-256 on a helper thread, so hashing overlaps reading, encrypting and writing an upload.

``hashlib`` releases the GIL while it hashes large buffers, so on a machine with a spare core a
digest computed here costs the request thread almost nothing. The queue is bounded: memory
stays at a few chunks whatever the size of the upload.
"""

from __future__ import annotations

import hashlib
import queue
import threading

_DONE = object()


class BackgroundDigest:
    """A SHA-256 fed from one thread and computed on another."""

    def __init__(self, max_pending: int = 8) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_pending)
        self._hash = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name="vault-sha256", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            self._hash.update(item)  # type: ignore[arg-type]

    def update(self, data: bytes) -> None:
        """Queue bytes to hash (blocks while the queue is full)."""
        if data:
            self._queue.put(data)

    def hexdigest(self) -> str:
        """Wait for every queued byte and return the hex digest."""
        self.close()
        return self._hash.hexdigest()

    def close(self) -> None:
        """Stop the helper thread (idempotent); call it on every path, errors included."""
        if not self._closed:
            self._closed = True
            self._queue.put(_DONE)
            self._thread.join()
