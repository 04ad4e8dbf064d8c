"""Every file of the image corpus through the one decoder, from a file and from bytes: an upright RGB picture in
the right colours, or one `DataError` line naming the file and the reason. Mutated JPEG and PNG bytes never raise
anything else."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ImageFile

from model.data.errors import DataError
from model.data.images import decode_image, read_image
from tests.image_corpus import BAD, GOOD, assert_decoded, reference


@pytest.mark.parametrize("make", GOOD.values(), ids=GOOD.keys())
def test_good_files_decode_upright_in_rgb(tmp_path: Path, make) -> None:
    sample = make(tmp_path)
    assert_decoded(read_image(sample.path), sample)
    assert_decoded(decode_image(sample.path.read_bytes(), sample.path.name), sample)


@pytest.mark.parametrize("make", BAD.values(), ids=BAD.keys())
def test_bad_files_are_one_line_naming_the_file_and_the_reason(tmp_path: Path, make) -> None:
    sample = make(tmp_path)
    with pytest.raises(DataError) as err:
        read_image(sample.path)
    assert err.value.path == sample.path and sample.reason in err.value.reason
    assert str(err.value).startswith(f"{sample.path}: ") and "\n" not in str(err.value)
    with pytest.raises(DataError) as err:
        decode_image(sample.path.read_bytes(), "upload.jpg")
    assert err.value.path == Path("upload.jpg") and sample.reason in err.value.reason


@pytest.mark.parametrize("name", ["bomb-png-100000x100000", "bomb-jpeg-65000x65000", "over-64-megapixels"])
def test_decompression_bombs_are_refused_from_the_header_without_decoding(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = BAD[name](tmp_path)
    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda img: decoded.append(img.size))
    with pytest.raises(DataError, match="image too large"):
        read_image(sample.path)
    assert decoded == []  # refused before a pixel was decoded: nothing of the claimed size was allocated


def _encoded(format: str) -> bytes:
    buffer = io.BytesIO()
    reference().save(buffer, format=format)
    return buffer.getvalue()


VALID = {"jpeg": _encoded("JPEG"), "png": _encoded("PNG")}


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with up to 16 bytes overwritten, and perhaps cut short."""
    out = bytearray(data)
    for at, value in draw(
        st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=16)
    ):
        out[at] = value
    return bytes(out[: draw(st.integers(1, len(out)))] if draw(st.booleans()) else out)


@pytest.mark.parametrize("kind", VALID)
def test_mutated_bytes_decode_or_are_one_data_error(kind: str) -> None:
    @settings(max_examples=60, deadline=None, database=None)
    @given(data=mutated(VALID[kind]))
    def check(data: bytes) -> None:
        try:
            img = decode_image(data, f"fuzz.{kind}")
        except DataError as err:
            assert str(err).startswith(f"fuzz.{kind}: ") and "\n" not in str(err)
            return
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3

    check()
