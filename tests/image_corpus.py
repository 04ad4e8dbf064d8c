"""A corpus of image files, good and bad, written by Pillow (and OpenCV for 16-bit RGB) into a test's folder.

Every good file holds the same upright picture (`reference`): four flat quadrants of different colours, red at the
top left, so a decoded result shows whether it came out upright, unmirrored and in the right colours. Every bad
file names the reason the decoder must give. Nothing binary is committed: the corpus is made fresh each run.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

HEIGHT, WIDTH = 48, 64  # not square: a result turned by 90 degrees has the wrong shape
QUADRANTS = ((220, 40, 40), (40, 200, 60), (40, 60, 210), (230, 200, 60))  # top left (the marker), top right,
# bottom left, bottom right
JPEG_TOLERANCE = 8  # a flat block's colour after a lossy round trip (chroma subsampling included)
# The orientation tag's transposition (EXIF 2-8, as `ImageOps.exif_transpose` undoes it) and its inverse, which
# turns the upright picture into what a camera stores.
STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Sample:
    """One file of the corpus and what decoding it must give.

    `expected` is the RGB uint8 picture the decoder must return (None: the file must be refused), compared within
    `tolerance` at the centre of each quadrant; `reason` is a piece of the refusal's one line.
    """

    path: Path
    expected: np.ndarray | None = None
    tolerance: int = 0
    reason: str = ""


def reference(mode: str = "RGB") -> Image.Image:
    """The upright test picture in `mode` (RGB, or L for the grey formats)."""
    img = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    h, w = HEIGHT // 2, WIDTH // 2
    for (rows, cols), colour in zip(
        [
            (slice(0, h), slice(0, w)),
            (slice(0, h), slice(w, None)),
            (slice(h, None), slice(0, w)),
            (slice(h, None), slice(w, None)),
        ],
        QUADRANTS,
    ):
        img[rows, cols] = colour
    return Image.fromarray(img).convert(mode)


def rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def quadrant_centres(img: np.ndarray) -> np.ndarray:
    """The mean colour of the middle of each quadrant `(4, 3)`, away from the edges a lossy codec blurs."""
    h, w = img.shape[0] // 2, img.shape[1] // 2
    dy, dx = h // 4, w // 4
    return np.array(
        [img[y + dy : y + h - dy, x + dx : x + w - dx].reshape(-1, 3).mean(axis=0) for y in (0, h) for x in (0, w)]
    )


def assert_decoded(img: np.ndarray, sample: Sample) -> None:
    """`img` is what `sample` must decode to: its shape, uint8, and its colours (hence its orientation)."""
    assert sample.expected is not None
    assert img.dtype == np.uint8 and img.shape == sample.expected.shape, (img.dtype, img.shape)
    if img.shape[0] < 4:
        difference = np.abs(img.astype(int) - sample.expected.astype(int))
    else:
        difference = np.abs(quadrant_centres(img) - quadrant_centres(sample.expected))
    assert difference.max() <= sample.tolerance, (quadrant_centres(img), quadrant_centres(sample.expected))


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = orientation
    return exif


def write_oriented(path: Path, upright: Image.Image, orientation: int, **options: object) -> Path:
    """Store `upright` the way a camera does: pixels turned by `orientation`'s inverse, and the tag that undoes it."""
    upright.transpose(STORED_AS[orientation]).save(path, exif=_exif(orientation), **options)
    return path


def _exif_jpeg(orientation: int) -> Callable[[Path], Sample]:
    def make(folder: Path) -> Sample:
        path = write_oriented(folder / f"orientation{orientation}.jpg", reference(), orientation, quality=95)
        return Sample(path, rgb(reference()), JPEG_TOLERANCE)

    return make


def _exif_png(folder: Path) -> Sample:
    return Sample(write_oriented(folder / "orientation6.png", reference(), 6), rgb(reference()))


def _exif_tiff(folder: Path) -> Sample:
    path = folder / "orientation8.tif"
    reference().transpose(STORED_AS[8]).save(path, tiffinfo={ORIENTATION_TAG: 8})
    return Sample(path, rgb(reference()))


def _jpeg(folder: Path) -> Sample:
    reference().save(folder / "baseline.jpg", quality=95)
    return Sample(folder / "baseline.jpg", rgb(reference()), JPEG_TOLERANCE)


def _progressive_jpeg(folder: Path) -> Sample:
    reference().save(folder / "progressive.jpg", quality=95, progressive=True)
    return Sample(folder / "progressive.jpg", rgb(reference()), JPEG_TOLERANCE)


def _grey_jpeg(folder: Path) -> Sample:
    reference("L").save(folder / "grey.jpg", quality=95)
    return Sample(folder / "grey.jpg", rgb(reference("L")), JPEG_TOLERANCE)


def _cmyk_jpeg(folder: Path) -> Sample:
    """Pillow writes CMYK JPEGs Adobe's way (inverted, with an Adobe marker), as Photoshop does."""
    reference().convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    return Sample(folder / "cmyk.jpg", rgb(reference()), JPEG_TOLERANCE)


def _ycck_jpeg(folder: Path) -> Sample:
    """A YCCK JPEG (Adobe's transform 2: C, M, Y stored as YCbCr, then K), as Photoshop saves CMYK.

    Pillow writes no YCCK, so its four channels are computed here and written as a CMYK JPEG whose Adobe marker is
    then switched to transform 2. A decoder that ignores the transform gives quite other colours.
    """
    cmyk = np.asarray(reference().convert("CMYK"))  # (H, W, 4)
    cmy_as_ycc = np.asarray(Image.fromarray(np.ascontiguousarray(cmyk[..., :3])).convert("YCbCr"))  # (H, W, 3)
    # Pillow inverts each channel as it writes a CMYK JPEG and again as it reads one (Adobe's convention), which
    # cancels out; libjpeg's YCCK decoding inverts once more (C = 255 - R): so the YCC part goes in inverted.
    channels = np.concatenate([255 - cmy_as_ycc, cmyk[..., 3:]], axis=2)
    Image.fromarray(np.ascontiguousarray(channels), "CMYK").save(folder / "ycck.jpg", quality=95, subsampling=0)
    data = bytearray((folder / "ycck.jpg").read_bytes())
    adobe = data.index(b"Adobe\x00")
    assert data[adobe + 11] == 0  # the transform flag: 0 (CMYK) as Pillow writes it
    data[adobe + 11] = 2
    (folder / "ycck.jpg").write_bytes(bytes(data))
    return Sample(folder / "ycck.jpg", rgb(reference()), JPEG_TOLERANCE)


# sRGB's primaries adapted to D50 (the ICC connection space's white), as the sRGB profile lists them
SRGB_PRIMARIES_D50 = {"r": (0.4361, 0.2225, 0.0139), "g": (0.3851, 0.7169, 0.0971), "b": (0.1431, 0.0606, 0.7141)}
D50 = (0.9642, 1.0, 0.8249)
ICC_GAMMA = 2.2  # the test profile's tone curve


def icc_profile(primaries: dict[str, tuple[float, float, float]], gamma: float = ICC_GAMMA) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix and tone curves), byte by byte after ICC.1:2001-04.

    `primaries` maps "r", "g", "b" to each colorant's XYZ (D50). No ICC file is committed or installed here, and
    Pillow can create only sRGB, so the test profile that makes colour management visible is written here.
    """

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(v: tuple[float, float, float]) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(s15(c) for c in v)

    text = b"posedex test profile\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    tags = [
        (b"desc", desc),
        (b"cprt", b"text" + bytes(4) + b"none\x00"),
        (b"wtpt", xyz(D50)),
        (b"rXYZ", xyz(primaries["r"])),
        (b"gXYZ", xyz(primaries["g"])),
        (b"bXYZ", xyz(primaries["b"])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)  # tags start on 4-byte boundaries
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(24)
        + struct.pack(">I", 0)
        + b"".join(s15(c) for c in D50)
        + bytes(48)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


SWAPPED_PRIMARIES = {"r": SRGB_PRIMARIES_D50["b"], "g": SRGB_PRIMARIES_D50["g"], "b": SRGB_PRIMARIES_D50["r"]}


def as_srgb_from_swapped(img: np.ndarray) -> np.ndarray:
    """What pixels tagged with the red-blue swapped gamma-2.2 profile look like in sRGB: red and blue exchange, and
    the tone curve changes from gamma 2.2 to sRGB's."""
    linear = (img.astype(float) / 255) ** ICC_GAMMA
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.rint(encoded[..., ::-1] * 255).astype(np.uint8)


def _icc(name: str, tolerance: int, **options: object) -> Callable[[Path], Sample]:
    """The reference's pixel values tagged with a profile whose red and blue primaries are sRGB's blue and red:
    a colour-managed decode shows the quadrants red-blue swapped (the top left blue), an unmanaged one as stored."""

    def make(folder: Path) -> Sample:
        reference().save(folder / name, icc_profile=icc_profile(SWAPPED_PRIMARIES), **options)
        return Sample(folder / name, as_srgb_from_swapped(rgb(reference())), tolerance)

    return make


def _broken_icc(folder: Path) -> Sample:
    """A profile cut short: the pixels decode as stored, as viewers show them (the profile is ignored)."""
    reference().save(folder / "broken-icc.png", icc_profile=icc_profile(SWAPPED_PRIMARIES)[:100])
    return Sample(folder / "broken-icc.png", rgb(reference()))


def _grey16_png(folder: Path) -> Sample:
    """16-bit grey: every level above 255, so clipping instead of scaling would make the picture white."""
    grey = np.asarray(reference("L")).astype(np.uint16) * 257  # (H, W) in [0, 65535]
    Image.fromarray(grey).save(folder / "grey16.png")
    return Sample(folder / "grey16.png", rgb(reference("L")))


def _rgb16_png(folder: Path) -> Sample:
    """48-bit RGB, which Pillow cannot write: OpenCV can (BGR order)."""
    rgb16 = rgb(reference()).astype(np.uint16) * 257 + 100  # low bytes set too
    assert cv2.imwrite(str(folder / "rgb16.png"), rgb16[..., ::-1].copy())
    return Sample(folder / "rgb16.png", rgb(reference()), 1)


def _grey16_tiff(folder: Path) -> Sample:
    grey = np.asarray(reference("L")).astype(np.uint16) * 257
    Image.fromarray(grey).save(folder / "grey16.tif")
    return Sample(folder / "grey16.tif", rgb(reference("L")))


def _grey16_pgm(folder: Path) -> Sample:
    grey = np.asarray(reference("L")).astype(np.uint16) * 257
    Image.fromarray(grey).save(folder / "grey16.pgm")
    return Sample(folder / "grey16.pgm", rgb(reference("L")))


def _palette(transparent: int | None) -> Image.Image:
    """The reference as a 4-colour palette picture; quadrant `transparent` (0-3) is the transparent index."""
    indices = np.zeros((HEIGHT, WIDTH), np.uint8)
    indices[: HEIGHT // 2, WIDTH // 2 :], indices[HEIGHT // 2 :, : WIDTH // 2], indices[HEIGHT // 2 :, WIDTH // 2 :] = (
        1,
        2,
        3,
    )
    img = Image.fromarray(indices, "P")
    img.putpalette([value for colour in QUADRANTS for value in colour])
    if transparent is not None:
        img.info["transparency"] = transparent
    return img


def _on_white(transparent_quadrant: int) -> np.ndarray:
    """The reference with one quadrant white: what transparency composited on the white background looks like."""
    img = rgb(reference()).copy()
    h, w = HEIGHT // 2, WIDTH // 2
    y, x = divmod(transparent_quadrant, 2)
    img[y * h : (y + 1) * h, x * w : (x + 1) * w] = 255
    return img


def _palette_png(folder: Path) -> Sample:
    _palette(3).save(folder / "palette.png", transparency=3)
    return Sample(folder / "palette.png", _on_white(3))


def _rgba_png(folder: Path) -> Sample:
    """Bottom right fully transparent, top right half transparent: both composited on white."""
    alpha = np.full((HEIGHT, WIDTH), 255, np.uint8)
    alpha[HEIGHT // 2 :, WIDTH // 2 :] = 0
    alpha[: HEIGHT // 2, WIDTH // 2 :] = 128
    rgba = np.concatenate([rgb(reference()), alpha[..., None]], axis=2)
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    expected = _on_white(3).astype(float)
    expected[: HEIGHT // 2, WIDTH // 2 :] = (expected[: HEIGHT // 2, WIDTH // 2 :] * 128 + 255 * 127) / 255
    return Sample(folder / "rgba.png", np.rint(expected).astype(np.uint8), 1)


def _la_png(folder: Path) -> Sample:
    grey = np.asarray(reference("L"))
    alpha = np.full((HEIGHT, WIDTH), 255, np.uint8)
    alpha[HEIGHT // 2 :, WIDTH // 2 :] = 0
    Image.fromarray(np.stack([grey, alpha], axis=2), "LA").save(folder / "la.png")
    expected = rgb(reference("L")).copy()
    expected[HEIGHT // 2 :, WIDTH // 2 :] = 255
    return Sample(folder / "la.png", expected)


def _grey_png(folder: Path) -> Sample:
    reference("L").save(folder / "grey.png")
    return Sample(folder / "grey.png", rgb(reference("L")))


def _animation(folder: Path, name: str, **options: object) -> Sample:
    """Two frames, the second the first upside down: only the first may come back."""
    first = reference()
    first.save(
        folder / name,
        save_all=True,
        append_images=[first.transpose(Image.Transpose.ROTATE_180)],
        duration=100,
        loop=0,
        **options,
    )
    return Sample(folder / name, rgb(first))


def _one_by_one(folder: Path) -> Sample:
    Image.new("RGB", (1, 1), QUADRANTS[0]).save(folder / "one_pixel.png")
    return Sample(folder / "one_pixel.png", np.array([[QUADRANTS[0]]], np.uint8))


def _simple(name: str, mode: str = "RGB", tolerance: int = 0) -> Callable[[Path], Sample]:
    def make(folder: Path) -> Sample:
        reference(mode).save(folder / name)
        return Sample(folder / name, rgb(reference(mode)), tolerance)

    return make


def _truncated(name: str) -> Callable[[Path], Sample]:
    def make(folder: Path) -> Sample:
        reference().save(folder / name)
        data = (folder / name).read_bytes()
        (folder / name).write_bytes(data[: len(data) // 2])
        return Sample(folder / name, reason="corrupt or truncated")

    return make


def _png_header(folder: Path, name: str, width: int, height: int) -> Path:
    """A small PNG whose header claims `width` x `height`, its checksum made right: only the size is a lie."""
    reference().save(folder / name)
    data = bytearray((folder / name).read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    (folder / name).write_bytes(bytes(data))
    return folder / name


def _bomb_png(folder: Path) -> Sample:
    return Sample(_png_header(folder, "bomb.png", 100_000, 100_000), reason="image too large")


def _bomb_jpeg(folder: Path) -> Sample:
    """A JPEG whose frame header (SOF0) claims 65,000 x 65,000."""
    reference().save(folder / "bomb.jpg")
    data = bytearray((folder / "bomb.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65_000, 65_000)  # height, width
    (folder / "bomb.jpg").write_bytes(bytes(data))
    return Sample(folder / "bomb.jpg", reason="image too large")


def _over_our_limit(folder: Path) -> Sample:
    """72 megapixels: under Pillow's own guard (89 MP), over ours (64 MP)."""
    return Sample(_png_header(folder, "72mp.png", 9_000, 8_000), reason="image too large: 9000x8000 pixels")


def _float_tiff(folder: Path) -> Sample:
    Image.fromarray(np.asarray(reference("L"), np.float32) / 255).save(folder / "float.tif")
    return Sample(folder / "float.tif", reason="32-bit float pixels")


def _written(name: str, data: bytes, reason: str) -> Callable[[Path], Sample]:
    def make(folder: Path) -> Sample:
        (folder / name).write_bytes(data)
        return Sample(folder / name, reason=reason)

    return make


def _unknown_format(name: str) -> Callable[[Path], Sample]:
    """A format Pillow writes but we do not read (EPS would even run Ghostscript)."""

    def make(folder: Path) -> Sample:
        reference().save(folder / name)
        return Sample(folder / name, reason="not an image Pillow can decode")

    return make


GOOD: dict[str, Callable[[Path], Sample]] = {
    **{f"jpeg-exif-{o}": _exif_jpeg(o) for o in range(2, 9)},
    "png-exif-6": _exif_png,
    "tiff-orientation-8": _exif_tiff,
    "jpeg": _jpeg,
    "jpeg-progressive": _progressive_jpeg,
    "jpeg-grey": _grey_jpeg,
    "jpeg-cmyk": _cmyk_jpeg,
    "jpeg-ycck": _ycck_jpeg,
    "png": _simple("plain.png"),
    "png-grey": _grey_png,
    "png-grey-16bit": _grey16_png,
    "png-rgb-16bit": _rgb16_png,
    "png-palette-transparent": _palette_png,
    "png-rgba": _rgba_png,
    "png-la": _la_png,
    "gif-animated": lambda folder: _animation(folder, "animated.gif"),
    "webp-animated": lambda folder: _animation(folder, "animated.webp", lossless=True),
    "png-animated": lambda folder: _animation(folder, "animated.png"),
    "tiff": _simple("plain.tif"),
    "tiff-grey-16bit": _grey16_tiff,
    "bmp": _simple("plain.bmp"),
    "ppm": _simple("plain.ppm"),
    "pgm": _simple("plain.pgm", "L"),
    "pgm-16bit": _grey16_pgm,
    "webp": _simple("plain.webp", tolerance=JPEG_TOLERANCE),
    "one-pixel": _one_by_one,
    "png-icc-profile": _icc("icc.png", tolerance=2),
    "jpeg-icc-profile": _icc("icc.jpg", tolerance=JPEG_TOLERANCE, quality=95),
    "tiff-icc-profile": _icc("icc.tif", tolerance=2),
    "png-icc-profile-broken": _broken_icc,
}
BAD: dict[str, Callable[[Path], Sample]] = {
    "zero-bytes": _written("empty.jpg", b"", "empty file (0 bytes)"),
    "text-named-jpg": _written("notes.jpg", b"shopping list: eggs, milk\n", "not an image Pillow can decode"),
    "random-bytes": _written("noise.png", np.random.default_rng(0).bytes(3000), "not an image Pillow can decode"),
    "jpeg-truncated": _truncated("truncated.jpg"),
    "png-truncated": _truncated("truncated.png"),
    "png-signature-only": _written("signature.png", b"\x89PNG\r\n\x1a\n", "not an image Pillow can decode"),
    "bomb-png-100000x100000": _bomb_png,
    "bomb-jpeg-65000x65000": _bomb_jpeg,
    "over-64-megapixels": _over_our_limit,
    "tiff-float": _float_tiff,
    "eps": _unknown_format("picture.eps"),
    "pcx": _unknown_format("picture.pcx"),
}
