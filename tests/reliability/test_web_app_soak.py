"""The background-removal web app under a soak: a real ``streamlit run unet/app.py`` server on
127.0.0.1, driven by several browser-like sessions at the same time, each uploading good photos,
oversized files, text, truncated PNGs and pixel floods (an 8000x8000 PNG of 190 kB that would
decode to 256 MB; a 20000x20000 one of 50 kB). No session may crash or see another's upload,
every bad upload gets an error naming it, and the server's resident and peak memory must stay
flat once every session is warm.

Streamlit's AppTest harness is not safe to drive from several threads at once, so each session
here speaks the browser's own protocol: protobuf ``BackMsg``/``ForwardMsg`` frames over the
``/_stcore/stream`` websocket (rerun requests with widget states) and an HTTP PUT for the file
bytes. Memory is the server process's VmRSS / VmHWM from /proc (Linux only).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet import build_unet

pytest.importorskip("streamlit")
requests = pytest.importorskip("requests")
websockets_client = pytest.importorskip("websockets.sync.client")
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402
from streamlit.proto.WidgetStates_pb2 import WidgetState  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="reads server memory from /proc (Linux)")

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "unet" / "app.py"
MAX_UPLOAD_MB = 0.25  # the app's byte cap for this server (so "oversized" stays small)
RECEIVE_TIMEOUT_S = 120  # one frame; a script run that never finishes fails the session
SERVER_START_TIMEOUT_S = 120
LARGE_PHOTO = (2000, 1500)  # (width, height): 9 MB decoded; one per session and round
# Growth of the server's resident memory over the mixed phase: well below one retained decoded
# 4000 x 4000 x 3 upload (48 MB), and below keeping each large photo's decoded array (checked
# in the test). Peak while only bad uploads come in: one decoded 8000 x 8000 flood alone takes
# 244 MB in PIL (4 bytes a pixel).
RSS_GROWTH_BOUND_MB = 20
PEAK_GROWTH_BOUND_MB = 100
# glibc keeps freed blocks below a threshold that grows with each large free (up to 32 MB), in
# one arena per thread (Streamlit runs each script run in a new thread): RSS then drifts by
# +-80 MB with no leak. A fixed threshold returns every freed array (> 128 kB) to the OS at
# once, so RSS measures what the app holds (drift +-5 MB). Other allocators ignore it.
SERVER_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def _photo(width: int, height: int, seed: int) -> bytes:
    """A flat photo with one random block (a few kB whatever its pixel count)."""
    pixels = np.full((height, width, 3), 90, np.uint8)
    pixels[4:12, 4:12] = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _rotated_jpeg(width: int, height: int) -> bytes:
    """A JPEG stored ``width x height`` whose EXIF says: display it turned by 90 degrees."""
    image = Image.fromarray(np.full((height, width, 3), 120, np.uint8))
    exif = image.getexif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def _flood_png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A valid flat PNG written row by row with zlib (never held decoded here)."""
    channels = {0: 1, 2: 3}[colour_type]
    row = bytes(1 + (width * channels * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    expected_error: str | None = None  # None: a cut-out of ``size`` must be offered
    size: tuple[int, int] | None = None  # displayed (width, height) of the cut-out


def _good_uploads(session: int, seed: int) -> list[Upload]:
    """Sizes differ per session (a session shown another session's upload is caught) and the
    bytes per ``seed`` (a cache of past uploads grows); the shapes the model sees do not."""
    small, large = (40 + 4 * session, 32), (LARGE_PHOTO[0], LARGE_PHOTO[1] + 4 * session)
    return [Upload(f"photo{session}.png", _photo(*small, seed), size=small),
            Upload(f"large{session}.png", _photo(*large, seed), size=large),
            Upload(f"phone{session}.jpg", _rotated_jpeg(64, 40 + 4 * session),
                   size=(40 + 4 * session, 64))]


FLOOD = _flood_png(8000, 8000)  # 64 MP: over the 40 MP default, under PIL's own limits
BOMB = _flood_png(20000, 20000, bit_depth=1, colour_type=0)  # 400 MP: over PIL's limit too
BAD_UPLOADS = [
    Upload("flood.png", FLOOD, "8000x8000"),
    Upload("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(300_000), "upload limit"),
    Upload("bomb.png", BOMB, "400,000,000 pixels"),
    Upload("cut.png", _photo(300, 200, 9)[:400], "truncated"),
    Upload("notes.jpg", b"this is a caption, not a photo", "not a readable image"),
]


@dataclass
class Page:
    """What one script run sent: element kinds, alerts, captions, download labels."""

    kinds: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    uploader_id: str | None = None
    session_id: str | None = None


class BrowserSession:
    """One browser tab, as Streamlit's frontend talks to the server."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.resources = contextlib.ExitStack()
        self.socket = self.resources.enter_context(websockets_client.connect(
            f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"], max_size=None,
            open_timeout=30))
        self.http = self.resources.enter_context(requests.Session())
        self.current_file = None  # FileURLs of the file the uploader holds
        page = self.rerun()
        assert page.session_id and page.uploader_id, page
        self.session_id, self.uploader_id = page.session_id, page.uploader_id

    def _receive(self) -> ForwardMsg:
        message = ForwardMsg()
        message.ParseFromString(self.socket.recv(timeout=RECEIVE_TIMEOUT_S))
        return message

    def rerun(self, widgets: list[WidgetState] | None = None) -> Page:
        request = BackMsg()
        request.rerun_script.query_string = ""
        request.rerun_script.widget_states.widgets.extend(widgets or [])
        self.socket.send(request.SerializeToString())
        page = Page()
        while True:
            message = self._receive()
            kind = message.WhichOneof("type")
            if kind == "new_session":
                page.session_id = message.new_session.initialize.session_id
            elif kind == "script_finished":
                if message.script_finished != ForwardMsg.FINISHED_SUCCESSFULLY:
                    page.exceptions.append(f"script finished with {message.script_finished}")
                return page
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                self._read_element(message.delta.new_element, page)

    @staticmethod
    def _read_element(element, page: Page) -> None:
        kind = element.WhichOneof("type")
        page.kinds.append(kind)
        if kind == "alert" and element.alert.format == element.alert.ERROR:
            page.errors.append(element.alert.body)
        elif kind == "exception":
            page.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif kind == "imgs":
            page.captions += [image.caption for image in element.imgs.imgs]
        elif kind == "download_button":
            page.downloads.append(element.download_button.label)
        elif kind == "file_uploader":
            page.uploader_id = element.file_uploader.id

    def upload(self, name: str, data: bytes) -> Page:
        """Replaces the uploader's file the way the browser does: ask for URLs, PUT, rerun,
        DELETE the file it replaced."""
        request = BackMsg()
        request.file_urls_request.request_id = name
        request.file_urls_request.file_names.append(name)
        request.file_urls_request.session_id = self.session_id
        self.socket.send(request.SerializeToString())
        for _ in range(100):
            message = self._receive()
            if message.WhichOneof("type") == "file_urls_response":
                break
        else:
            raise AssertionError("the server sent no upload URL")
        urls = message.file_urls_response.file_urls[0]
        reply = self.http.put(self.base + urls.upload_url, timeout=60,
                              files={"file": (name, data, "application/octet-stream")})
        assert reply.status_code == 204, (name, reply.status_code, reply.text[:200])
        state = WidgetState(id=self.uploader_id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), urls.file_id
        info.file_urls.CopyFrom(urls)
        page = self.rerun([state])
        if self.current_file is not None:
            self.http.delete(self.base + self.current_file.delete_url, timeout=60)
        self.current_file = urls
        return page

    def close(self) -> None:
        self.resources.close()


def check(upload: Upload, page: Page) -> str | None:
    """What went wrong with one upload, as a user would see it; None when nothing did."""
    if page.exceptions:
        return f"{upload.name}: the page shows an exception: {page.exceptions}"
    if upload.expected_error is None:
        width, height = upload.size
        if page.errors or len(page.downloads) != 2:
            return f"{upload.name}: no cut-out offered; errors {page.errors}"
        if f"Cut-out {width}x{height}" not in page.captions:
            return f"{upload.name}: expected a {width}x{height} cut-out, got {page.captions}"
        return None
    if page.downloads:
        return f"{upload.name}: a download was offered for a bad upload"
    if not any(upload.name in error and upload.expected_error in error for error in page.errors):
        return f"{upload.name}: expected an error with {upload.expected_error!r}; got {page.errors}"
    return None


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


class PeakMeter:
    """Peak resident memory (MB) of a process from ``start()`` to ``stop()``: its VmHWM after
    resetting it (/proc/<pid>/clear_refs, Linux >= 4.0), else VmRSS sampled every 5 ms."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._sampler: threading.Thread | None = None

    def _hwm_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as status:
            line = next(line for line in status if line.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb(self.pid))

    def start(self) -> float:
        """Resets the peak; returns the resident memory it starts from."""
        self.peak = _rss_mb(self.pid)
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
        except OSError:
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self.peak

    def stop(self) -> float:
        if self._sampler is None:
            self.peak = max(self.peak, self._hwm_mb())
        else:
            self._stop.set()
            self._sampler.join(timeout=10)
        return self.peak


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("app") / "tiny.keras"
    build_unet("improved", (None, None, 3), depth=2, base_filters=4).save(path)
    return path


@pytest.fixture
def server(model_file, tmp_path):
    """``(process, port)`` of ``streamlit run unet/app.py`` on 127.0.0.1; killed afterwards."""
    port = _free_port()
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 (closed in the teardown)
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
         # XSRF protection needs the browser's cookie dance; these clients carry no cookies.
         "--server.enableXsrfProtection", "false",
         "--", "--model", str(model_file), "--max-upload-mb", str(MAX_UPLOAD_MB)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, **SERVER_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [
            str(REPO), os.environ.get("PYTHONPATH")]))})
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the server did not start: "
                                     + (tmp_path / "server.log").read_text()[-2000:])
            time.sleep(0.2)
        yield process, port
    finally:
        process.kill()
        process.wait(timeout=30)
        log.close()


def _upload_all(session: BrowserSession, uploads: list[Upload], failures: list[str]) -> int:
    for upload in uploads:
        failures += filter(None, [check(upload, session.upload(upload.name, upload.data))])
    return len(uploads)


def _session(port: int, index: int, rounds: int, barrier: threading.Barrier,
             failures: list[str], counts: list[int]) -> None:
    """One user: warm up, then ``rounds`` of every upload, then ``rounds`` of bad ones only;
    the main thread measures memory at each ``barrier``. Every phase ends on an error page
    (no images held), so the phases end in the same state."""
    session = None
    rng = np.random.default_rng(index)
    last = BAD_UPLOADS[-1:]
    try:
        session = BrowserSession(port)
        _upload_all(session, _good_uploads(index, seed=0) + last, failures)
        barrier.wait()  # warm: model loaded, every shape seen
        for round_ in range(rounds):  # every upload once a round, in this session's own order
            uploads = _good_uploads(index, seed=1 + round_) + BAD_UPLOADS
            counts[index] += _upload_all(session, [uploads[i] for i in rng.permutation(
                len(uploads))], failures)
        _upload_all(session, last, failures)
        barrier.wait()  # resident memory measured; the peak is reset
        barrier.wait()
        for _ in range(rounds):
            counts[index] += _upload_all(session, [BAD_UPLOADS[i] for i in rng.permutation(
                len(BAD_UPLOADS))], failures)
        _upload_all(session, last, failures)
        barrier.wait()  # peak measured
    except threading.BrokenBarrierError:
        failures.append(f"session {index}: stopped, another session failed first")
    except Exception as error:  # noqa: BLE001 (report every failure of a session thread)
        failures.append(f"session {index} crashed: {error!r}")
        barrier.abort()
    finally:
        if session is not None:
            session.close()


def soak(server, sessions: int, rounds: int) -> dict[str, float]:
    """Runs the sessions at once; returns the server's memory figures (MB) and timings (s)."""
    process, port = server
    failures: list[str] = []
    counts = [0] * sessions
    barrier = threading.Barrier(sessions + 1, timeout=600)
    threads = [threading.Thread(target=_session, daemon=True,
                                args=(port, index, rounds, barrier, failures, counts))
               for index in range(sessions)]
    meter = PeakMeter(process.pid)
    figures = {"started": time.monotonic()}
    for thread in threads:
        thread.start()
    try:
        barrier.wait()
        figures.update(warm=time.monotonic(), rss_before=_rss_mb(process.pid))
        barrier.wait()
        figures.update(mixed=time.monotonic(), rss_after=_rss_mb(process.pid))
        figures["rss_bad_start"] = meter.start()
        barrier.wait()
        barrier.wait()
        figures.update(bad=time.monotonic(), peak_bad=meter.stop())
    except threading.BrokenBarrierError:
        meter.stop()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures[:5]
    assert not any(thread.is_alive() for thread in threads), "a session hung"
    assert process.poll() is None, "the server died"
    figures.update(uploads=sum(counts), warm_s=figures["warm"] - figures["started"],
                   mixed_s=figures["mixed"] - figures["warm"],
                   bad_s=figures["bad"] - figures["mixed"])
    print(f"soak: {sessions} sessions, {figures['uploads']} uploads after a "
          f"{figures['warm_s']:.1f}s warm-up; mixed phase {figures['mixed_s']:.1f}s: server RSS "
          f"{figures['rss_before']:.0f} -> {figures['rss_after']:.0f} MB; bad-only phase "
          f"{figures['bad_s']:.1f}s: peak {figures['rss_bad_start']:.0f} -> "
          f"{figures['peak_bad']:.0f} MB")
    return figures


def _assert_memory_flat(figures: dict[str, float], sessions: int, rounds: int) -> None:
    kept_if_leaked = sessions * rounds * LARGE_PHOTO[0] * LARGE_PHOTO[1] * 3 / 2**20
    assert RSS_GROWTH_BOUND_MB < min(48, kept_if_leaked), "the bound could not see a leak"
    grown = figures["rss_after"] - figures["rss_before"]
    assert grown < RSS_GROWTH_BOUND_MB, (
        f"server memory grew by {grown:.0f} MB over {figures['uploads']} uploads: something "
        "keeps uploads after their page is gone")
    peak = figures["peak_bad"] - figures["rss_bad_start"]
    assert peak < PEAK_GROWTH_BOUND_MB, (
        f"server memory peaked {peak:.0f} MB higher while only bad uploads came in: a pixel "
        "flood was decoded before it was refused")


@pytest.mark.slow  # a real server + 3 sessions, ~70 s; tests/unet/test_app.py covers floods
def test_simultaneous_sessions_survive_bad_uploads_and_floods_without_memory_growth(server):
    """Several users at once, each uploading floods, junk and photos to one server: nobody
    sees a crash, another user's photo, or a silent failure, and the server does not bloat."""
    _assert_memory_flat(soak(server, sessions=3, rounds=1), sessions=3, rounds=1)


@pytest.mark.slow
def test_long_soak_of_many_sessions(server):
    """As above with more users and rounds (minutes): slow leaks show up as growth."""
    _assert_memory_flat(soak(server, sessions=8, rounds=8), sessions=8, rounds=8)
