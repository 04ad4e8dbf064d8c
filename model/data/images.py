"""Reading and writing single frames: the one place that decodes an image file.

Frames are RGB `uint8` arrays `(H, W, 3)`, upright. Files (`read_image`) and bytes that never touched the disk
(`decode_image`: the browser's uploads, the ORL photos inside a wheel) go through one decoder, `_decode`, so every
entry point (`index build/add` and `index query`, `daegan reenact`, `daegan prepare --sample orl`, the UI) sees a
picture the same way and refuses it the same way: a `DataError` naming the file and the reason.

Choices:
- Formats: JPEG (MPO files open as JPEG), PNG (and APNG), GIF, WebP, TIFF, BMP and PPM/PGM/PBM (`FORMATS`). Pillow knows
  some forty more; a few (EPS) run outside programs, and each one is more parser a crafted file can reach.
- Size: at most `MAX_PIXELS` = 64 megapixels, read from the header before a pixel is decoded, so a file claiming
  100,000 x 100,000 is refused at once. Decoding peaks at 14-18 bytes a pixel (measured at 16 MP: Pillow's picture,
  its turned copy, its RGB conversion, the array; the top with transparency), so about 1 GB at 64 MP, per picture
  and per build worker. 64 MP is above the largest common camera (61 MP) and far above a phone's default 12-50 MP.
  Pillow's own bomb guard (89 MP, an error above twice that) stays on behind it.
- Orientation: the EXIF orientation tag (2-8) is applied (`ImageOps.exif_transpose`): phones store a portrait photo
  sideways with a tag that says so, and the face detector and the pose code need the head as the person saw it.
- Colour: an embedded ICC profile is applied, converting to sRGB (`ImageCms`, LittleCMS inside Pillow, perceptual
  intent): phones shoot Display P3, editors save Adobe RGB and CMYK with their profiles, and the training frames
  are sRGB, so an unconverted picture would show P its face in other colours than a viewer does. A profile that
  is broken or does not fit the pixels (an RGB profile on a grey picture) is ignored, as viewers ignore it: the
  pixels are still good. Without a profile, pixels are taken as sRGB; CMYK and YCCK JPEGs without one use
  Pillow's conversion. 16-bit greys (PNG, TIFF, PGM) are scaled to 8 bits (v / 257, rounded), not clipped (48-bit
  RGB PNGs Pillow reduces itself); 32-bit float pixels are refused: nothing says what range they span.
- Transparency (an alpha channel, a palette's or a tRNS transparent colour) is composited on white
  (`BACKGROUND`): what most viewers show behind a cut-out portrait. No training frame has transparency, so there
  is no other convention to follow.
- Animations (GIF, WebP, APNG) and multi-page TIFFs: the first frame, the picture a viewer shows before playing.
- A 1x1 picture decodes like any other: how small is too small is the caller's to say (a query or a reenactment
  source then has "no face found"; a build encodes it as it encodes any frame, since the frames are crops already).
- Pillow's warnings about metadata (a corrupt EXIF block, an odd MPO header) are ignored: the pixels still decode,
  and a warning would be a second line where the user gets one. Its log records go nowhere unless an application
  configures logging.
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from model.data.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # what frame collections and reenactment outputs are made of
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "PPM")  # Pillow's names of the formats we decode
FORMAT_NAMES = "JPEG, PNG, GIF, WebP, TIFF, BMP, PPM/PGM"
DECODABLE_SUFFIXES = (
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
    ".bmp",
    ".ppm",
    ".pgm",
    ".pbm",
)  # the file names of `FORMATS`: what a folder of query photos is searched for
MAX_PIXELS = 64_000_000  # width x height; the module docstring says why
BACKGROUND = (255, 255, 255)  # behind transparent pixels
SIXTEEN_TO_EIGHT_BITS = 257  # 65535 / 255: 16-bit white stays white
SRGB = ImageCms.createProfile("sRGB")  # what every frame is in once decoded
MANAGED_MODES = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB", "L": "RGB"}  # mode: the mode its profile converts to

# Pillow logs some refusals (a TIFF's absurd sample count) as errors before raising them, and Python prints such a
# record on stderr when nothing handles it: a second line where the user gets one. A library's NullHandler stops
# that fallback; an application that configures logging still receives the records.
logging.getLogger("PIL").addHandler(logging.NullHandler())


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file into an upright RGB array `(H, W, 3)` uint8; a `DataError` names the file and the reason."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(path, "empty file (0 bytes)")
        with open(path, "rb") as file:
            return _decode(file, path, max_pixels=MAX_PIXELS)
    except FileNotFoundError as err:
        raise DataError(path, "no such file") from err
    except IsADirectoryError as err:
        raise DataError(path, "is a folder, not an image") from err


def decode_image(data: bytes, name: str | Path, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode image bytes that never touched the disk (an upload) as `read_image` decodes a file.

    `name` labels the `DataError`; `max_pixels` may refuse pictures smaller than `MAX_PIXELS` (the UI's upload
    bound), still from their header, before a pixel is decoded.
    """
    if not data:
        raise DataError(name, "empty file (0 bytes)")
    return _decode(io.BytesIO(data), name, max_pixels=max_pixels)


def _decode(file: BinaryIO, name: str | Path, *, max_pixels: int) -> np.ndarray:
    """The one decoder behind `read_image` and `decode_image`: every failure is a `DataError` naming `name`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(file, formats=FORMATS) as img:
                if img.width * img.height > max_pixels:
                    raise DataError(name, f"image too large: {img.width}x{img.height} pixels, more than {max_pixels:,}")
                img.load()  # decode now: a truncated file fails here, not later
                ImageOps.exif_transpose(img, in_place=True)
                return _to_rgb(_to_srgb(img), name)
        except DataError:
            raise
        except UnidentifiedImageError as err:
            raise DataError(name, f"not an image Pillow can decode (we read {FORMAT_NAMES})") from err
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise DataError(name, f"image too large to decode safely ({err})") from err
        except Exception as err:
            # Pillow's format plugins report malformed data with many exception types (OSError, SyntaxError,
            # struct.error, EOFError, IndexError, ...), and these bytes are the user's: any of them is a bad file.
            raise DataError(name, f"corrupt or truncated image ({type(err).__name__}: {err})") from err


def _to_srgb(img: Image.Image) -> Image.Image:
    """`img` converted to sRGB by its embedded ICC profile; unchanged without one, or with one that does not apply."""
    profile = img.info.get("icc_profile")
    if not profile or img.mode not in MANAGED_MODES:
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        return ImageCms.profileToProfile(img, source, SRGB, outputMode=MANAGED_MODES[img.mode])
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img  # a broken profile, or one for other pixels: the pixels as stored (module docstring)


def _to_rgb(img: Image.Image, name: str | Path) -> np.ndarray:
    """A decoded picture of any mode as RGB uint8 `(H, W, 3)` (the module docstring gives the rules)."""
    if img.mode == "F":
        raise DataError(name, "32-bit float pixels: no known range to scale to 8 bits")
    if img.mode.startswith("I"):  # 16-bit grey: I;16, I;16B, ... or I (Pillow's 32-bit integers hold 16-bit PGMs)
        grey = np.rint(np.asarray(img, dtype=np.float32) / SIXTEEN_TO_EIGHT_BITS)  # (H, W)
        return np.repeat(np.clip(grey, 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)  # (H, W, 3)
    if img.has_transparency_data:  # an alpha channel, or a palette's or a tRNS transparent colour
        background = Image.new("RGBA", img.size, (*BACKGROUND, 255))
        return np.asarray(Image.alpha_composite(background, img.convert("RGBA")).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def write_image(path: str | Path, img: np.ndarray) -> None:
    """Encode an RGB `(H, W, 3)` uint8 array by the file's suffix (PNG lossless, JPEG quality 95)."""
    path = Path(path)
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (img.shape, img.dtype)
    options = {"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {"compress_level": 1}
    Image.fromarray(img).save(path, **options)
