"""Streamlit web app: upload a photo, see the cut-out and the mask, download the PNG.

    pip install "mrcnn-toolkit[app]"
    streamlit run unet/app.py -- --model logs/person_segmentation/best.keras
    (or set UNET_MODEL=path/to/model.keras)
    limits: -- --max-upload-mb 20 --max-megapixels 24 (or UNET_MAX_UPLOAD_MB, UNET_MAX_MEGAPIXELS)

One model is loaded per server process and shared by every session. Uploads are capped in
bytes (``unet.background.MAX_UPLOAD_BYTES``, and Streamlit's ``server.maxUploadSize``) and in
pixels (``MAX_PIXELS``), the latter from the image header before anything is decoded (see
unet.uploads). The app never fetches URLs. The caption names the device inference runs on (the
GPU TensorFlow lists, or CPU). Visitors get Streamlit's viewer toolbar, without the developer
options (Deploy, Rerun, Clear cache): ``client.toolbarMode = "viewer"`` in the repository's
``.streamlit/config.toml``, read by ``streamlit run`` started from the repository root; elsewhere
pass ``--client.toolbarMode viewer``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

import keras
import streamlit as st

from unet import saving
from unet.background import CutoutOptions, cut_out, encode_png
from unet.device import describe_device
from unet.imaging import ImageReadError
from unet.models import build_inference_model
from unet.postprocess import parse_color
from unet.uploads import UploadLimits, load_upload

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"]


def _arguments() -> argparse.Namespace:
    """What follows ``streamlit run app.py --`` (unknown arguments are ignored)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model")
    parser.add_argument("--max-upload-mb")
    parser.add_argument("--max-megapixels")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known


def model_path() -> str | None:
    """``--model`` after ``streamlit run app.py --``, else the UNET_MODEL variable."""
    return _arguments().model or os.environ.get("UNET_MODEL")


def upload_limits() -> UploadLimits:
    """``--max-upload-mb`` / ``--max-megapixels`` (else UNET_MAX_UPLOAD_MB / UNET_MAX_MEGAPIXELS,
    else the library defaults). Raises ValueError naming a value that is not a positive number."""
    arguments = _arguments()
    values = {}
    for option, variable in (("max_upload_mb", "UNET_MAX_UPLOAD_MB"),
                             ("max_megapixels", "UNET_MAX_MEGAPIXELS")):
        text = getattr(arguments, option) or os.environ.get(variable)
        if text is None:
            continue
        try:
            values[option] = float(text)
        except ValueError:
            values[option] = math.nan
        if not values[option] > 0 or math.isinf(values[option]):
            raise ValueError(f"--{option.replace('_', '-')} / {variable} must be a positive "
                             f"number; got {text!r}")
    return UploadLimits.from_units(**values)


def browser_upload_mb(limits: UploadLimits) -> int:
    """Whole MB the browser's uploader refuses above: the app's cap rounded up, never above
    Streamlit's ``server.maxUploadSize`` (the server would refuse the upload itself)."""
    return max(1, min(math.ceil(limits.max_bytes / 2**20), st.get_option("server.maxUploadSize")))


@st.cache_resource
def load_model(path: str) -> keras.Model:
    """Loaded once per process (cached), as a single-output inference model (no loss needed)."""
    return build_inference_model(saving.load_model(path, compile=False))


def sidebar_options() -> CutoutOptions:
    st.sidebar.header("Post-processing")
    threshold = st.sidebar.slider("Threshold", 0.05, 0.95, 0.5, 0.05)
    min_size = st.sidebar.number_input("Remove components smaller than (px)", 0, 100000, 50)
    holes = st.sidebar.checkbox("Fill holes", value=True)
    feather = st.sidebar.slider("Soft edges (sigma, px)", 0.0, 5.0, 0.0, 0.5)
    colour = st.sidebar.text_input("Solid background colour (empty: transparent)", "")
    background = parse_color(colour) if colour.strip() else None
    return CutoutOptions(threshold, int(min_size), holes, feather, background)


def main() -> None:
    st.set_page_config(page_title="Background removal", layout="wide")
    st.title("Person background removal (U-Net)")
    path = model_path()
    if not path or not os.path.isfile(path):
        st.error(f"No model file ({path!r}). Start with: streamlit run unet/app.py -- "
                 "--model path/to/best.keras")
        return
    try:
        model = load_model(path)
    except saving.ModelFileError as error:
        st.error(str(error))
        return
    st.caption(f"Model: {os.path.basename(path)} ({model.count_params():,} parameters), "
               f"device: {describe_device()} ({keras.backend.backend()})")
    try:
        limits = upload_limits()
    except ValueError as error:
        st.error(str(error))
        return
    try:
        options = sidebar_options()
    except ValueError as error:
        st.sidebar.error(str(error))
        return
    upload = st.file_uploader("Upload a photo", type=UPLOAD_TYPES,
                              help=f"PNG, JPEG, WebP, BMP or TIFF, {limits.describe()}",
                              max_upload_size=browser_upload_mb(limits))
    if upload is None:
        st.info("Upload a PNG or JPEG photo to remove its background.")
        return
    try:  # the header is checked (bytes, format, pixels) before anything is decoded
        _, image = load_upload(upload.getvalue(), upload.name, limits)
    except ImageReadError as error:
        st.error(str(error))
        return
    with st.spinner("Segmenting..."):
        cutout, alpha = cut_out(model, image, options)
        cutout_png, alpha_png = encode_png(cutout), encode_png(alpha)
    height, width = alpha.shape
    # The same PNG bytes are shown and offered: encoded once, kept once per session.
    left, right = st.columns(2)
    left.image(cutout_png, caption=f"Cut-out {width}x{height}")
    right.image(alpha_png, caption="Mask")
    stem = os.path.splitext(upload.name)[0]
    st.download_button("Download PNG", cutout_png, file_name=f"{stem}_cutout.png",
                       mime="image/png")
    st.download_button("Download mask", alpha_png, file_name=f"{stem}_mask.png",
                       mime="image/png")


main()
