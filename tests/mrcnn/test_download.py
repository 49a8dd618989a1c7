"""Downloader against a local HTTP server on 127.0.0.1: full, resumed, corrupt, failing."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mrcnn.engine import download
from mrcnn.engine.download import (
    DownloadError,
    download_file,
    download_trained_weights,
    get_weights_path,
)

PAYLOAD = os.urandom(300_000)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.payload`` with Range support; ``server.mode`` injects failures."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        if server.mode == "error":
            self.send_error(500, "Internal Server Error")
            return
        data = server.payload
        start = 0
        byte_range = self.headers.get("Range")
        if byte_range and server.mode != "ignore_range":
            start = int(byte_range.removeprefix("bytes=").rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.mode == "truncate":  # promise everything, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.payload, httpd.mode, httpd.requests = PAYLOAD, "ok", []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_full_download_lands_verified_and_leaves_no_part_file(server, tmp_path):
    dest = download_file(f"{server.url}/w.h5", tmp_path / "w.h5", sha256=PAYLOAD_SHA256,
                         progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "w.h5.part").exists()
    assert server.requests == [("/w.h5", None)]


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    (tmp_path / "w.h5.part").write_bytes(PAYLOAD[:1000])
    dest = download_file(f"{server.url}/w.h5", tmp_path / "w.h5", sha256=PAYLOAD_SHA256,
                         progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == [("/w.h5", "bytes=1000-")]


def test_truncated_transfer_keeps_the_part_file_and_the_next_call_completes_it(server, tmp_path):
    server.mode = "truncate"
    with pytest.raises(DownloadError, match="run again to resume"):
        download_file(f"{server.url}/w.h5", tmp_path / "w.h5", progress=False)
    part = tmp_path / "w.h5.part"
    assert 0 < part.stat().st_size < len(PAYLOAD) and not (tmp_path / "w.h5").exists()
    server.mode = "ok"
    dest = download_file(f"{server.url}/w.h5", tmp_path / "w.h5", sha256=PAYLOAD_SHA256,
                         progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests[-1][1] == f"bytes={len(PAYLOAD) // 2}-"


def test_server_without_range_support_restarts_from_zero(server, tmp_path):
    server.mode = "ignore_range"
    (tmp_path / "w.h5.part").write_bytes(PAYLOAD[:1000])
    dest = download_file(f"{server.url}/w.h5", tmp_path / "w.h5", sha256=PAYLOAD_SHA256,
                         progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_is_finished_without_downloading_again(server, tmp_path):
    (tmp_path / "w.h5.part").write_bytes(PAYLOAD)
    dest = download_file(f"{server.url}/w.h5", tmp_path / "w.h5", sha256=PAYLOAD_SHA256,
                         progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_sha256_mismatch_raises_and_leaves_no_file(server, tmp_path):
    with pytest.raises(DownloadError, match=f"sha256 is {PAYLOAD_SHA256}, expected 0+"):
        download_file(f"{server.url}/w.h5", tmp_path / "w.h5", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_error_raises_a_clear_error_naming_url_and_status(server, tmp_path):
    server.mode = "error"
    with pytest.raises(DownloadError, match=r"/w\.h5 failed: HTTP 500"):
        download_file(f"{server.url}/w.h5", tmp_path / "w.h5", progress=False)
    assert not (tmp_path / "w.h5").exists()


def test_unreachable_host_raises_download_error(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError, match="cannot download"):
        download_file(f"http://127.0.0.1:{port}/w.h5", tmp_path / "w.h5", progress=False,
                      timeout=5)


def test_existing_verified_file_is_reused_and_a_corrupt_one_replaced(server, tmp_path):
    dest = tmp_path / "w.h5"
    dest.write_bytes(PAYLOAD)
    download_file(f"{server.url}/w.h5", dest, sha256=PAYLOAD_SHA256, progress=False)
    assert server.requests == []
    dest.write_bytes(b"corrupt")
    download_file(f"{server.url}/w.h5", dest, sha256=PAYLOAD_SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD and len(server.requests) == 1


def test_default_destination_is_the_cache_dir_from_the_environment(server, tmp_path,
                                                                   monkeypatch):
    monkeypatch.setenv("MRCNN_CACHE_DIR", str(tmp_path / "cache"))
    dest = download_file(f"{server.url}/w.h5", progress=False)
    assert dest == tmp_path / "cache" / "w.h5" and dest.read_bytes() == PAYLOAD


def test_coco_weights_come_from_the_mirror_url(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MRCNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MRCNN_WEIGHTS_URL", server.url + "/mirror/")
    monkeypatch.delenv("MRCNN_COCO_WEIGHTS", raising=False)
    path = get_weights_path("coco", progress=False)
    assert path == tmp_path / "cache" / "mask_rcnn_coco.h5" and path.read_bytes() == PAYLOAD
    assert server.requests == [("/mirror/mask_rcnn_coco.h5", None)]
    target = download_trained_weights(tmp_path / "here" / "mask_rcnn_coco.h5", verbose=0)
    assert target.read_bytes() == PAYLOAD


def test_mirror_serving_a_different_imagenet_file_is_rejected_by_its_md5(server, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("MRCNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MRCNN_WEIGHTS_URL", server.url)
    monkeypatch.delenv("MRCNN_IMAGENET_WEIGHTS_DIR", raising=False)
    with pytest.raises(DownloadError, match="md5 is .*expected 88cf7a10"):
        get_weights_path("imagenet", backbone="resnet101", progress=False)
    assert server.requests[0][0] == "/resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert not any((tmp_path / "cache").iterdir())


def test_local_weight_overrides_need_no_network(tmp_path, monkeypatch):
    coco = tmp_path / "mask_rcnn_coco.h5"
    coco.write_bytes(b"h5")
    monkeypatch.setenv("MRCNN_COCO_WEIGHTS", str(coco))
    monkeypatch.setenv("MRCNN_IMAGENET_WEIGHTS_DIR", str(tmp_path))
    assert get_weights_path("coco") == coco
    spec = download.WEIGHTS_FILES["imagenet_resnet50"]
    (tmp_path / spec.filename).write_bytes(b"h5")
    assert get_weights_path("imagenet", backbone="resnet50") == tmp_path / spec.filename
    with pytest.raises(FileNotFoundError, match="MRCNN_IMAGENET_WEIGHTS_DIR"):
        get_weights_path("imagenet", backbone="resnet101")


def test_unknown_weights_kind_lists_the_choices():
    with pytest.raises(ValueError, match="expected one of.*'coco', 'imagenet'"):
        get_weights_path("imagenet", backbone="vgg16")
