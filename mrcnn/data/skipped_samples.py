"""Training samples that fail to load: the tally of skips, and a clean interpreter exit.

Both training inputs (``tf.data`` and the ``PyDataset`` loader, through
:class:`mrcnn.data.sample_builder.SampleBuilder`) replace an image whose file or masks fail to
load with the next one that loads; :data:`SKIPPED_SAMPLES` counts those skips for the epoch
report, and :data:`DRAIN` lets the ``tf.data`` pipeline's worker threads go idle before Python
shuts down.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time

from mrcnn.data.errors import DatasetError

logger = logging.getLogger(__name__)


class _PipelineDrain:
    """Lets tf.data's worker threads go idle before the interpreter shuts down.

    A ``numpy_function`` that tf.data starts while Python is finalizing waits for the GIL
    forever, and the iterator's destructor waits for it: the process hangs at exit. At exit we
    make new calls return a placeholder at once (which fills the prefetch buffers and stops the
    workers) and wait, with the GIL released, until the calls in flight have returned.
    """

    def __init__(self) -> None:
        self.closing = False
        self.in_flight = 0
        self.last_call = 0.0
        self.lock = threading.Lock()

    def enter(self) -> bool:
        """Register a call; False when the interpreter is exiting (skip the work)."""
        with self.lock:
            self.last_call = time.monotonic()
            if self.closing:
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def drain(self, quiet_s: float = 0.2, timeout_s: float = 10.0) -> None:
        self.closing = True
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                idle = self.in_flight == 0 and time.monotonic() - self.last_call > quiet_s
            if idle:
                return
            time.sleep(0.02)


DRAIN = _PipelineDrain()
atexit.register(DRAIN.drain)


class SkippedSamples:
    """Thread-safe tally of training samples skipped because their image or masks failed to load.

    The pipeline records every skip (a warning names each file the first time it fails);
    :meth:`take` returns the counts by reason since the previous call, which is what
    :class:`mrcnn.engine.training.SkippedSamplesReport` logs at the end of each epoch.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since_take: dict[str, int] = {}
        self._warned: set[str] = set()

    def record(self, reference: str, error: Exception) -> None:
        reason = skip_reason(error)
        with self._lock:
            self._since_take[reason] = self._since_take.get(reason, 0) + 1
            first_time = reference not in self._warned
            self._warned.add(reference)
        if first_time:
            logger.warning("skipping %s (%s): %s", reference, reason, error)

    def take(self) -> dict[str, int]:
        """Skips by reason since the last call (then resets the counts)."""
        with self._lock:
            counts, self._since_take = self._since_take, {}
        return counts


# Shared by every training input of the process (training and validation).
SKIPPED_SAMPLES = SkippedSamples()

# What a per-image failure can raise; anything else is a bug and stops the run.
SKIPPABLE_ERRORS = (DatasetError, OSError)


def skip_reason(error: Exception) -> str:
    """A short category for the epoch summary: missing file, unreadable image, bad annotations."""
    if isinstance(error, FileNotFoundError):
        return "missing file"
    if isinstance(error, OSError):
        return "unreadable file"
    text = str(error)
    if "load_mask" in text:
        return "bad annotations"
    if "too large" in text:
        return "image too large"
    return "unreadable image"
