"""Checking an uploaded image from its header before anything decodes it (web app uploads).

A compressed image can be tiny on the wire and huge in memory: an 8000x8000 flat PNG is about
200 kB but decodes to 8000 * 8000 * 4 bytes (PIL keeps RGB as 4 bytes a pixel). So the byte
count is checked first, then the format, width and height that ``PIL.Image.open`` reads from
the header (it is lazy: nothing is decoded until ``load()``), and only an upload that passes
both is decoded. ``read_upload_header`` never decodes; ``load_upload`` decodes after it.

Sizes are ``width x height`` in pixels as PIL's header reader reports them. The EXIF
orientation is applied only after decoding (``load_upload`` returns the image as displayed):
reading it can itself decode (``getexif()`` on a PNG loads the pixels to look for an eXIf chunk
after them), and a rotation by 90 degrees swaps width and height but never changes the pixel
count that the check is about.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from PIL import Image, ImageOps, UnidentifiedImageError

from unet import background
from unet.imaging import ImageReadError

# Formats PIL may open for an upload (what the file uploader's extensions map to; PIL's JPEG
# opener also returns the "MPO" files of many cameras). Every other PIL plugin (EPS runs
# Ghostscript, for one) stays unused.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
# How many leading bytes of an unrecognised upload an error message shows.
SHOWN_PREFIX_BYTES = 8


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may weigh before and after decoding."""

    # Encoded size, bytes (checked before PIL sees the data).
    max_bytes: int = field(default_factory=lambda: background.MAX_UPLOAD_BYTES)
    # Decoded width * height (checked from the header, before decoding).
    max_pixels: int = field(default_factory=lambda: background.MAX_PIXELS)

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"UploadLimits.{name} must be a positive int; got {value!r}")

    @classmethod
    def from_units(cls, max_upload_mb: float | None = None,
                   max_megapixels: float | None = None) -> UploadLimits:
        """Limits in MB (2**20 bytes) and megapixels (10**6); None keeps the default."""
        defaults = cls()
        return cls(
            defaults.max_bytes if max_upload_mb is None else int(max_upload_mb * 2**20),
            defaults.max_pixels if max_megapixels is None else int(max_megapixels * 1e6),
        )

    def describe(self) -> str:
        """``"at most 50 MB and 40 megapixels"`` (for help texts)."""
        return f"at most {_megabytes(self.max_bytes)} and {_megapixels(self.max_pixels)}"


@dataclass(frozen=True)
class UploadHeader:
    """What the header of an upload says; nothing here needed a decode."""

    name: str
    format: str  # PIL's format name: "PNG", "JPEG", ...
    width: int  # pixels, as PIL's header reader reports them
    height: int  # pixels
    byte_count: int  # of the encoded upload

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _megabytes(count: int) -> str:
    return f"{count / 2**20:.3g} MB" if count >= 2**20 // 10 else f"{count:,} bytes"


def _megapixels(count: int) -> str:
    return f"{count / 1e6:.3g} megapixels"


def _received(data: bytes) -> str:
    return f"received {len(data)} bytes starting {data[:SHOWN_PREFIX_BYTES]!r}"


def _pixel_error(name: str, received: str, limits: UploadLimits) -> ImageReadError:
    return ImageReadError(f"{name}: {received} exceeds the limit of {limits.max_pixels:,} pixels "
                          f"({_megapixels(limits.max_pixels)}); scale the photo down and upload "
                          "it again")


def _open_lazily(data: bytes, name: str, limits: UploadLimits) -> Image.Image:
    """``Image.open`` (header only) with every failure turned into an ImageReadError."""
    expected = ", ".join(ALLOWED_FORMATS)
    try:
        return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as error:
        # PIL refuses sizes above 2 * Image.MAX_IMAGE_PIXELS in open() itself, before we see
        # the size; its message carries the pixel count.
        match = re.search(r"\((\d+) pixels\)", str(error))
        received = (f"an image of {int(match[1]):,} pixels" if match
                    else "an image of more pixels than PIL opens")
        effective = UploadLimits(limits.max_bytes,
                                 min(limits.max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or 1)))
        raise _pixel_error(name, received, effective) from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{name}: not a readable image (expected {expected}; "
                             f"{_received(data)})") from None
    except (OSError, SyntaxError, ValueError, TypeError, IndexError) as error:
        raise ImageReadError(f"{name}: not a readable image (its header is broken: {error}; "
                             f"{_received(data)})") from None


def read_upload_header(data: bytes, name: str = "upload",
                       limits: UploadLimits | None = None) -> UploadHeader:
    """Checks an upload's byte count, format and pixel count without decoding its pixels.

    Raises ImageReadError, starting with ``name``, that says what was received and the limit.
    """
    limits = limits or UploadLimits()
    if len(data) > limits.max_bytes:
        raise ImageReadError(f"{name}: {len(data):,} bytes ({_megabytes(len(data))}) exceeds the "
                             f"upload limit of {_megabytes(limits.max_bytes)}")
    if not data:
        raise ImageReadError(f"{name}: not a readable image (the upload is empty)")
    with _open_lazily(data, name, limits) as image:
        width, height = image.size
        header = UploadHeader(name, image.format or "?", width, height, len(data))
    if width < 1 or height < 1:
        raise ImageReadError(f"{name}: not a readable image (a {header.format} header "
                             f"says {width}x{height} pixels)")
    if header.pixels > limits.max_pixels:
        raise _pixel_error(name, f"a {header.format} image of {width}x{height} = "
                                 f"{header.pixels:,} pixels", limits)
    return header


def load_upload(data: bytes, name: str = "upload",
                limits: UploadLimits | None = None) -> tuple[UploadHeader, Image.Image]:
    """``(header, image)``: the checked header, then the decoded image in displayed orientation.

    Decodes only after ``read_upload_header`` passed. A file that is cut short or corrupt after
    a good header (truncated uploads) raises ImageReadError naming ``name`` and the format.
    """
    header = read_upload_header(data, name, limits)
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as handle:
            # The same bytes, so the same header; guards against a plugin that disagrees.
            assert handle.size == (header.width, header.height), (handle.size, header)
            handle.load()
            image = ImageOps.exif_transpose(handle)
    except (OSError, SyntaxError, ValueError, TypeError, IndexError, EOFError) as error:
        raise ImageReadError(f"{name}: not a readable image (the {header.format} data of "
                             f"{header.width}x{header.height} pixels is truncated or corrupt: "
                             f"{error})") from None
    return header, image
