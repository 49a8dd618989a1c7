"""The web app's chrome: the device caption and the toolbar visitors get (no Deploy button)."""

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from unet import build_unet
from unet.device import describe_device

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "unet" / "app.py"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("chrome") / "tiny.keras"
    build_unet("improved", (None, None, 3), depth=2, base_filters=4).save(path)
    return path


def _fake_gpus(monkeypatch, details):
    """TensorFlow lists one GPU per entry of ``details`` (what get_device_details returns)."""
    import tensorflow as tf

    gpus = [SimpleNamespace(name=f"/physical_device:GPU:{index}", device_type="GPU")
            for index in range(len(details))]
    by_name = {gpu.name: detail for gpu, detail in zip(gpus, details, strict=True)}
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: by_name[device.name])


def test_device_is_named_from_what_tensorflow_lists(monkeypatch):
    """The caption's device is the GPU model TensorFlow lists (counted when repeated; its id when
    the build gives no name), and "CPU" without one; a user would otherwise be told nothing
    about whether their GPU is used."""
    _fake_gpus(monkeypatch, [])
    assert describe_device() == "CPU"
    _fake_gpus(monkeypatch, [{"device_name": "NVIDIA H200"}])
    assert describe_device() == "NVIDIA H200"
    _fake_gpus(monkeypatch, [{"device_name": "NVIDIA H200"}, {"device_name": "NVIDIA H200"}, {}])
    assert describe_device() == "2 x NVIDIA H200, /physical_device:GPU:2"


def _apptest():
    if importlib.util.find_spec("streamlit") is None:
        pytest.skip("streamlit is not installed (pip install 'mrcnn-toolkit[app]')")
    from streamlit.testing.v1 import AppTest

    return AppTest


def test_app_caption_names_the_real_device(model_file, monkeypatch):
    """The app's caption says which device runs the model: this machine's (TensorFlow lists no GPU
    here: "CPU"), and a GPU by its name when TensorFlow lists one."""
    app_test = _apptest()
    monkeypatch.setenv("UNET_MODEL", str(model_file))
    at = app_test.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception
    caption = " ".join(element.value for element in at.caption)
    assert f"device: {describe_device()} (tensorflow)" in caption, caption
    monkeypatch.setattr("unet.device.list_gpu_names", lambda: ["NVIDIA H200"])
    at.run()
    caption = " ".join(element.value for element in at.caption)
    assert "device: NVIDIA H200 (tensorflow)" in caption, caption


def test_streamlit_run_from_the_repository_root_uses_the_viewer_toolbar():
    """``streamlit run unet/app.py`` from the repository root (as the README says) reads the
    repository's .streamlit/config.toml: the toolbar is "viewer", so visitors get no Deploy,
    Rerun or Clear cache."""
    _apptest()
    shown = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert 'toolbarMode = "viewer"' in shown.stdout.splitlines(), shown.stdout[-3000:]


def _missing_for_browser_test():
    missing = [] if os.path.exists(CHROMIUM) else [f"{CHROMIUM} (Debian package 'chromium')"]
    missing += [f"python package {name}" for name in ("playwright", "streamlit")
                if importlib.util.find_spec(name) is None]
    return missing


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve(model_file, *flags):
    """``streamlit run unet/app.py`` from the repository root on a free port, once it answers."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false", *flags, "--", "--model", str(model_file)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server, port
        time.sleep(0.5)
    server.kill()
    raise AssertionError("the streamlit server did not start in 120 s")


@pytest.mark.slow  # two streamlit servers + Chromium: ~60 s on 2 cores
@pytest.mark.skipif(bool(_missing_for_browser_test()),
                    reason="browser test needs: " + ", ".join(_missing_for_browser_test()))
def test_visitors_see_no_deploy_button_in_headless_chromium(model_file):
    """In a real browser on localhost, the app shows the device caption and no Deploy button;
    the same page with Streamlit's default toolbar ("auto": developer options on localhost)
    does show one, so the check can see it."""
    from playwright.sync_api import sync_playwright

    deploy_buttons = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        for label, flags in (("repository config", ()),
                             ("default toolbar", ("--client.toolbarMode", "auto"))):
            server, port = _serve(model_file, *flags)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}", timeout=120_000)
                page.get_by_text(f"device: {describe_device()} (tensorflow)").wait_for(
                    timeout=120_000)
                page.locator('[data-testid="stToolbar"]').wait_for(timeout=60_000)
                deploy_buttons[label] = page.locator('[data-testid="stAppDeployButton"]').count()
                page.close()
            finally:
                server.terminate()
                server.wait(timeout=30)
        browser.close()
    assert deploy_buttons == {"repository config": 0, "default toolbar": 1}, deploy_buttons
