"""The background-removal web app under a short soak: oversized uploads, non-images, pixel
floods and good photos from several live sessions sharing one cached model, through Streamlit's
AppTest. No session may crash, every bad upload gets an error message, and the process's
resident memory must stop growing once the model is warm.

The sessions run in their own threads, but their requests take turns: Streamlit's AppTest
harness is not safe to drive from several threads at once (in one CI run of 2026-12-01 a session
saw another's upload and one lost its page), which is a fault of the harness, not of the app."""

import io
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet import build_unet

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "unet" / "app.py"
SESSIONS, ROUNDS = 3, 3
HARNESS = threading.Lock()  # one AppTest request at a time (see the module docstring)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _png(width: int, height: int, seed: int) -> bytes:
    """A flat photo with one random block: a few hundred bytes whatever its pixel count."""
    pixels = np.full((height, width, 3), 90, np.uint8)
    pixels[4:12, 4:12] = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


UPLOADS = [  # (name, bytes, expected error text or None)
    ("photo.png", _png(48, 32, 0), None),
    ("huge.png", b"\x89PNG" + bytes(5000), "upload limit"),
    ("notes.jpg", b"this is text", "not a readable image"),
    ("flood.png", _png(200, 200, 1), "pixels"),
    ("photo2.png", _png(40, 56, 2), None),
]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("app") / "tiny.keras"
    build_unet("improved", (None, None, 3), depth=2, base_filters=4).save(path)
    return path


def _session(failures: list, rounds: int) -> None:
    try:
        at = AppTest.from_file(str(APP), default_timeout=120)
        with HARNESS:
            at.run()
        for _ in range(rounds):
            for name, data, expected in UPLOADS:
                with HARNESS:
                    at.file_uploader[0].set_value((name, data, "image/png"))
                    at.run()
                if at.exception:
                    failures.append(f"{name}: exception {at.exception[0].value}")
                elif expected is None and len(at.get("download_button")) != 2:
                    failures.append(f"{name}: no download offered; page: "
                                    f"{[e.value for e in at.error + at.info]}")
                elif expected is not None and not any(expected in e.value for e in at.error):
                    failures.append(f"{name}: expected an error with {expected!r}, got "
                                    f"{[e.value for e in at.error]}")
    except Exception as error:  # noqa: BLE001 (report every failure of a session thread)
        failures.append(f"session crashed: {error!r}")


def test_concurrent_sessions_with_bad_uploads_neither_crash_nor_grow_memory(model_file,
                                                                            monkeypatch):
    monkeypatch.setenv("UNET_MODEL", str(model_file))
    monkeypatch.setattr("unet.background.MAX_UPLOAD_BYTES", 4000)
    monkeypatch.setattr("unet.background.MAX_PIXELS", 100 * 100)
    failures: list[str] = []
    _session(failures, rounds=1)  # warm-up: model loaded and cached, graphs traced
    before = _rss_mb()
    threads = [threading.Thread(target=_session, args=(failures, ROUNDS))
               for _ in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    grown = _rss_mb() - before
    print(f"soak: {SESSIONS * ROUNDS * len(UPLOADS)} requests, RSS {before:.0f} MB -> +{grown:.1f} MB")
    assert not failures, failures[:5]
    assert not any(thread.is_alive() for thread in threads)
    # 45 requests; a leak of one decoded upload per request would exceed this bound.
    assert grown < 120, f"resident memory grew by {grown:.0f} MB over the soak"
