"""The background-removal web app: core functions, Streamlit's AppTest, and a real browser."""

import importlib.util
import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet import build_unet
from unet.background import CutoutOptions, cut_out, decode_upload, encode_png
from unet.imaging import ImageReadError

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "unet" / "app.py"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("app") / "tiny.keras"
    build_unet("improved", (None, None, 3), depth=2, base_filters=4).save(path)
    return path


def png_bytes(width, height, exif_orientation=None, fmt="PNG"):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3),
                                                                   dtype=np.uint8))
    buffer = io.BytesIO()
    if exif_orientation:
        exif = image.getexif()
        exif[0x0112] = exif_orientation
        image.save(buffer, format="JPEG", exif=exif)
    else:
        image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_cutout_keeps_original_size_and_orientation(model_file):
    import keras

    model = keras.models.load_model(model_file)
    image = decode_upload(png_bytes(30, 18, exif_orientation=6))
    cutout, alpha = cut_out(model, image, CutoutOptions(background=(255, 255, 255)))
    assert cutout.shape == (30, 18, 4) and alpha.shape == (30, 18)
    assert (cutout[..., 3] == 255).all()  # solid background -> opaque
    assert Image.open(io.BytesIO(encode_png(cutout))).mode == "RGBA"


def test_upload_limits_and_garbage(monkeypatch):
    monkeypatch.setattr("unet.background.MAX_UPLOAD_BYTES", 100)
    with pytest.raises(ImageReadError, match="big.png.*upload limit"):
        decode_upload(b"x" * 101, "big.png")
    with pytest.raises(ImageReadError, match="junk.jpg: not a readable image"):
        decode_upload(b"junk", "junk.jpg")


def _apptest():
    if importlib.util.find_spec("streamlit") is None:
        pytest.skip("streamlit is not installed (pip install 'mrcnn-toolkit[app]')")
    from streamlit.testing.v1 import AppTest

    if not hasattr(AppTest, "file_uploader"):
        pytest.skip("this streamlit version's AppTest cannot upload files")
    return AppTest


def test_app_uploads_and_offers_the_cutout(model_file, monkeypatch):
    """Streamlit's own test runner: upload a photo, get images and a PNG download."""
    app_test = _apptest()
    monkeypatch.setenv("UNET_MODEL", str(model_file))
    at = app_test.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception
    at.file_uploader[0].set_value(("photo.png", png_bytes(40, 24), "image/png"))
    at.run()
    assert not at.exception and not at.error
    assert [b.label for b in at.get("download_button")] == ["Download PNG", "Download mask"]


def test_app_reports_missing_model_and_bad_upload(model_file, monkeypatch):
    app_test = _apptest()
    monkeypatch.setenv("UNET_MODEL", "/nonexistent.keras")
    at = app_test.from_file(str(APP), default_timeout=120)
    at.run()
    assert "No model file" in at.error[0].value
    monkeypatch.setenv("UNET_MODEL", str(model_file))
    at = app_test.from_file(str(APP), default_timeout=120)
    at.run()
    at.file_uploader[0].set_value(("broken.png", b"not a png", "image/png"))
    at.run()
    assert "broken.png: not a readable image" in at.error[0].value


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _missing_for_browser_test():
    missing = [] if os.path.exists(CHROMIUM) else [f"{CHROMIUM} (Debian package 'chromium')"]
    missing += [f"python package {name}" for name in ("playwright", "streamlit")
                if importlib.util.find_spec(name) is None]
    return missing


@pytest.mark.skipif(bool(_missing_for_browser_test()),
                    reason="browser test needs: " + ", ".join(_missing_for_browser_test()))
def test_app_in_headless_chromium(model_file, tmp_path):
    """A real browser uploads a photo and downloads an RGBA PNG of the original size."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", "--", "--model", str(model_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        photo = tmp_path / "photo.png"
        photo.write_bytes(png_bytes(50, 30))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}", timeout=120_000)
            page.locator("input[type=file]").set_input_files(str(photo), timeout=120_000)
            button = page.get_by_text("Download PNG")
            button.wait_for(timeout=120_000)
            with page.expect_download() as download:
                button.click()
            saved = tmp_path / "cutout.png"
            download.value.save_as(saved)
            browser.close()
        cutout = Image.open(saved)
        assert cutout.mode == "RGBA" and cutout.size == (50, 30)
    finally:
        server.terminate()
        server.wait(timeout=30)
