"""Streamlit web app: upload a photo, see the cut-out and the mask, download the PNG.

    pip install "mrcnn-toolkit[app]"
    streamlit run unet/app.py -- --model logs/person_segmentation/best.keras
    (or set UNET_MODEL=path/to/model.keras)

One model is loaded per server process and shared by every session. Uploads are capped
(``MAX_UPLOAD_BYTES``, and Streamlit's ``server.maxUploadSize``); the app never fetches URLs.
"""

from __future__ import annotations

import argparse
import os
import sys

import keras
import streamlit as st

from unet.background import CutoutOptions, cut_out, decode_upload, encode_png
from unet.imaging import ImageReadError
from unet.models import build_inference_model
from unet.postprocess import parse_color

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"]


def model_path() -> str | None:
    """``--model`` after ``streamlit run app.py --``, else the UNET_MODEL variable."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--model")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.model or os.environ.get("UNET_MODEL")


@st.cache_resource
def load_model(path: str) -> keras.Model:
    """Loaded once per process (cached), as a single-output inference model."""
    return build_inference_model(keras.models.load_model(path))


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
    model = load_model(path)
    st.caption(f"Model: {os.path.basename(path)} ({model.count_params():,} parameters), "
               f"device: {keras.backend.backend()} / CPU or GPU as TensorFlow found it")
    try:
        options = sidebar_options()
    except ValueError as error:
        st.sidebar.error(str(error))
        return
    upload = st.file_uploader("Upload a photo", type=UPLOAD_TYPES)
    if upload is None:
        st.info("Upload a PNG or JPEG photo to remove its background.")
        return
    try:
        image = decode_upload(upload.getvalue(), upload.name)
    except ImageReadError as error:
        st.error(str(error))
        return
    with st.spinner("Segmenting..."):
        cutout, alpha = cut_out(model, image, options)
    left, right = st.columns(2)
    left.image(cutout, caption=f"Cut-out {cutout.shape[1]}x{cutout.shape[0]}")
    right.image(alpha, caption="Mask")
    stem = os.path.splitext(upload.name)[0]
    st.download_button("Download PNG", encode_png(cutout), file_name=f"{stem}_cutout.png",
                       mime="image/png")
    st.download_button("Download mask", encode_png(alpha), file_name=f"{stem}_mask.png",
                       mime="image/png")


main()
