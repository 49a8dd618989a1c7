"""The background-removal web app: core functions, Streamlit's AppTest, and a real browser."""

import importlib.util
import io
import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet import build_unet
from unet.background import MAX_PIXELS, CutoutOptions, cut_out, decode_upload, encode_png
from unet.imaging import ImageReadError
from unet.uploads import UploadLimits, load_upload, read_upload_header

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


def flood_png(width, height, bit_depth=8, colour_type=2):
    """A valid flat PNG, written row by row with zlib: 8000x8000 RGB is 187 kB on the wire and
    8000 * 8000 * 4 bytes once PIL decodes it; never held decoded here."""
    row = bytes(1 + (width * {0: 1, 2: 3}[colour_type] * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind, payload):
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


FLOODS = {  # name -> (width, height, bit depth, colour type, what the message must name)
    # 64 MP: over the app's 40 MP, under PIL's own warning (89 MP) and error (179 MP) limits.
    "flood.png": (8000, 8000, 8, 2, "8000x8000 = 64,000,000 pixels"),
    # 400 MP: PIL itself refuses it in Image.open (DecompressionBombError).
    "bomb.png": (20000, 20000, 1, 0, "400,000,000 pixels"),
}


@pytest.mark.parametrize("name", sorted(FLOODS))
def test_pixel_flood_is_refused_from_its_header_without_decoding(name, monkeypatch):
    """A small file of a huge image is refused with its size and the limit, and PIL never
    decodes it (a user would otherwise see the server stall and swap)."""
    width, height, depth, colour, received = FLOODS[name]
    data = flood_png(width, height, depth, colour)
    assert len(data) < 200_000  # well under the byte cap: only the pixel check can stop it

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the pixel data was decoded")

    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decoding)
    with pytest.raises(ImageReadError) as refused:
        load_upload(data, name)
    assert str(refused.value).startswith(f"{name}: ")
    assert received in str(refused.value) and f"{MAX_PIXELS:,} pixels" in str(refused.value)


def test_refusing_pixel_floods_takes_no_memory_in_a_fresh_process(tmp_path):
    """Peak memory of a fresh process while it refuses an 8000x8000 and a 20000x20000 PNG
    stays flat, where decoding the first alone takes 244 MB (a server would run out of memory
    under a few such uploads)."""
    for name, (width, height, depth, colour, _) in FLOODS.items():
        (tmp_path / name).write_bytes(flood_png(width, height, depth, colour))
    child = textwrap.dedent("""
        import json, resource, sys
        from pathlib import Path
        from PIL import Image
        from unet.imaging import ImageReadError
        from unet.uploads import load_upload

        def peak_mb():
            # Linux: VmHWM belongs to this process's own memory map. ru_maxrss would not do:
            # it keeps the parent's resident size across fork + exec (2.9 GB under pytest).
            status = Path("/proc/self/status")
            if status.exists():
                line = next(l for l in status.read_text().splitlines() if l.startswith("VmHWM:"))
                return int(line.split()[1]) / 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # macOS: bytes

        folder = Path(sys.argv[1])
        uploads = {name: (folder / name).read_bytes() for name in sys.argv[2:]}
        figures = {"start": peak_mb()}
        for name, data in uploads.items():
            try:
                load_upload(data, name)
                figures[name] = "accepted"
            except ImageReadError as error:
                figures[name] = str(error)
        figures["refused"] = peak_mb()
        Image.open(folder / "flood.png").load()  # control: what one decode takes
        figures["decoded"] = peak_mb()
        print(json.dumps(figures))
    """)
    result = subprocess.run([sys.executable, "-c", child, str(tmp_path), *sorted(FLOODS)],
                            capture_output=True, text=True, timeout=300, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    refused, decoded = figures["refused"] - figures["start"], figures["decoded"] - figures["refused"]
    print(f"peak memory: {figures['start']:.0f} MB; +{refused:.1f} MB refusing "
          f"{', '.join(sorted(FLOODS))}; +{decoded:.0f} MB decoding flood.png")
    assert all(figures[name].startswith(f"{name}: ") for name in FLOODS), figures
    assert decoded > 8000 * 8000 * 3 / 2**20, "the control decode did not show: bad meter"
    assert refused < 20, f"refusing the floods raised peak memory by {refused:.0f} MB"


def photo_bytes(width, height, fmt="PNG", **save):
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 100, np.uint8)).save(buffer, format=fmt, **save)
    return buffer.getvalue()


BAD = {  # name -> (bytes, what the message must say)
    "empty.png": (b"", "the upload is empty"),
    "notes.jpg": (b"a caption, not a photo", "received 22 bytes starting b'a captio'"),
    "anim.gif": (photo_bytes(8, 8, "GIF"), "expected PNG, JPEG, WEBP, BMP, TIFF"),
    "cut.png": (photo_bytes(300, 200)[:200], "PNG data of 300x200 pixels is truncated"),
    "cut.jpg": (photo_bytes(300, 200, "JPEG")[:900], "JPEG data of 300x200 pixels is truncated"),
    "head.png": (photo_bytes(30, 20)[:20], "its header is broken"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_non_images_and_truncated_uploads_are_refused_with_a_reason(name):
    """Empty, foreign, cut-short and broken files each get a message naming the file and what
    is wrong with it, instead of a stack trace or a half-drawn cut-out."""
    data, reason = BAD[name]
    with pytest.raises(ImageReadError) as refused:
        load_upload(data, name)
    assert str(refused.value).startswith(f"{name}: not a readable image") and reason in str(
        refused.value), str(refused.value)


def test_oversized_upload_is_refused_before_pil_sees_it(monkeypatch):
    """A file over the byte cap is refused by its length alone, naming both sizes."""
    def no_opening(*args, **kwargs):
        raise AssertionError("PIL opened an oversized upload")

    monkeypatch.setattr("PIL.Image.open", no_opening)
    with pytest.raises(ImageReadError, match=r"big.png: 2,000 bytes .*upload limit of 1,000 bytes"):
        read_upload_header(b"x" * 2000, "big.png", UploadLimits(max_bytes=1000))


def test_pixel_limit_counts_pixels_whatever_the_rotation():
    """A phone photo stored 30x18 and shown 18x30 (EXIF) is checked by its 540 pixels,
    accepted at exactly the limit, and comes back upright."""
    data = png_bytes(30, 18, exif_orientation=6)
    header, image = load_upload(data, "phone.jpg", UploadLimits(max_pixels=540))
    assert (header.format, header.pixels, image.size) == ("JPEG", 540, (18, 30))
    with pytest.raises(ImageReadError, match="phone.jpg: a JPEG image of 30x18 = 540 pixels "
                                             "exceeds the limit of 539 pixels"):
        load_upload(data, "phone.jpg", UploadLimits(max_pixels=539))


def test_upload_limits_in_units_and_nonsense_limits():
    """The operator's --max-upload-mb / --max-megapixels become bytes and pixels; zero or
    negative limits are refused with the value given."""
    assert UploadLimits.from_units(0.25, 1.5) == UploadLimits(2**18, 1_500_000)
    assert UploadLimits.from_units() == UploadLimits()
    assert UploadLimits().describe() == "at most 50 MB and 40 megapixels"
    with pytest.raises(ValueError, match="max_pixels must be a positive int; got 0"):
        UploadLimits.from_units(max_megapixels=0)


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


def test_app_refuses_floods_and_applies_the_operators_limits(model_file, monkeypatch):
    """In the app, a pixel flood gets an error naming the file, its size and the limit; the
    operator's megapixel limit applies; a nonsense limit is reported, not a crash."""
    app_test = _apptest()
    monkeypatch.setenv("UNET_MODEL", str(model_file))
    at = app_test.from_file(str(APP), default_timeout=120)
    at.run()
    at.file_uploader[0].set_value(("flood.png", flood_png(8000, 8000), "image/png"))
    at.run()
    assert not at.exception and not at.get("download_button")
    assert "flood.png: a PNG image of 8000x8000" in at.error[0].value
    assert f"limit of {MAX_PIXELS:,} pixels" in at.error[0].value

    monkeypatch.setenv("UNET_MAX_MEGAPIXELS", "0.001")  # 1000 pixels
    at = app_test.from_file(str(APP), default_timeout=120)
    at.run()
    at.file_uploader[0].set_value(("small.png", png_bytes(40, 24), "image/png"))
    at.run()
    assert not at.error and len(at.get("download_button")) == 2
    at.file_uploader[0].set_value(("wide.png", png_bytes(50, 24), "image/png"))
    at.run()
    assert "wide.png: a PNG image of 50x24 = 1,200 pixels exceeds the limit of 1,000" in (
        at.error[0].value)

    monkeypatch.setenv("UNET_MAX_UPLOAD_MB", "lots")
    at = app_test.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception and "UNET_MAX_UPLOAD_MB must be a positive number; got 'lots'" in (
        at.error[0].value)


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
