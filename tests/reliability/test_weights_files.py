"""Bad weights files give clear errors, and the download cache never keeps a corrupt file:
non-HDF5, truncated HDF5, another architecture's file, and a transfer cut off halfway by a
local HTTP server on 127.0.0.1."""

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import keras
import pytest

import mrcnn.model as modellib
from mrcnn.config import tiny_config
from mrcnn.engine.download import DownloadError, download_file
from mrcnn.engine.weights import WeightsFileError, read_h5_weights


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return modellib.MaskRCNN("inference", tiny_config(), tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="module")
def good_h5(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "mask_rcnn_tiny.h5"
    model.save_weights(path)
    return path


def test_non_hdf5_file_names_the_file_and_the_likely_cause(model, tmp_path):
    path = tmp_path / "mask_rcnn_coco.h5"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(WeightsFileError, match="mask_rcnn_coco.h5.*not a readable HDF5"):
        model.load_weights(path)


def test_truncated_hdf5_is_a_weights_file_error(model, good_h5, tmp_path):
    data = good_h5.read_bytes()
    for fraction in (0.1, 0.5, 0.9):
        path = tmp_path / f"cut{fraction}.h5"
        path.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(WeightsFileError, match=f"cut{fraction}.h5"):
            model.load_weights(path)


def test_weights_of_another_architecture_are_refused_naming_the_file(model, tmp_path):
    """A Keras classifier's .h5 shares no layer name with Mask R-CNN."""
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, name="dense_out")])
    path = tmp_path / "classifier.weights.h5"
    other.save_weights(path)
    with pytest.raises((WeightsFileError, ValueError), match="classifier.weights.h5"):
        model.load_weights(path)


def test_weights_for_other_layer_sizes_name_the_layer_and_both_shapes(model, tmp_path):
    wider = modellib.MaskRCNN("inference", tiny_config(num_classes=7), tmp_path / "logs")
    wider.save_weights(tmp_path / "seven_classes.h5")
    with pytest.raises(WeightsFileError, match="mrcnn_class_logits.*seven_classes.h5"):
        model.load_weights(tmp_path / "seven_classes.h5")


class _HangsUpHalfway(BaseHTTPRequestHandler):
    """Promises the whole file, sends ``server.fraction`` of it and closes the connection."""

    def do_GET(self):  # noqa: N802 (http.server naming)
        body = self.server.payload
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: int(len(body) * self.server.fraction)])
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server(good_h5):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _HangsUpHalfway)
    httpd.payload, httpd.fraction = good_h5.read_bytes(), 0.5
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/mask_rcnn_tiny.h5"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_interrupted_download_never_lands_in_the_cache(server, tmp_path):
    """Users would notice: a half-downloaded mask_rcnn_coco.h5 is 'found' on every later run."""
    sha256 = hashlib.sha256(server.payload).hexdigest()
    dest = tmp_path / "cache" / "mask_rcnn_tiny.h5"
    with pytest.raises(DownloadError):
        download_file(server.url, dest, sha256=sha256, progress=False, timeout=10)
    assert not dest.exists()
    server.fraction = 1.0
    assert download_file(server.url, dest, sha256=sha256, progress=False, timeout=10) == dest
    assert read_h5_weights(dest)


def test_corrupt_file_in_the_cache_is_replaced_not_used(server, tmp_path):
    sha256 = hashlib.sha256(server.payload).hexdigest()
    dest = tmp_path / "mask_rcnn_tiny.h5"
    dest.write_bytes(server.payload[:1000])  # e.g. left by an older, non-atomic downloader
    server.fraction = 1.0
    download_file(server.url, dest, sha256=sha256, progress=False, timeout=10)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == sha256
    server.payload = server.payload[:-10] + b"0123456789"  # the mirror serves a damaged copy
    dest.unlink()
    with pytest.raises(DownloadError, match="sha256"):
        download_file(server.url, dest, sha256=sha256, progress=False, timeout=10)
    assert not dest.exists() and not list(tmp_path.glob("*.part"))
