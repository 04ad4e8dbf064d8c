"""The UI's uploads over the image corpus: decoded as `index query` decodes a file, or one friendly message."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.data.errors import DataError
from tests.image_corpus import BAD, GOOD, assert_decoded
from ui import uploads


@pytest.mark.parametrize("make", GOOD.values(), ids=GOOD.keys())
def test_good_uploads_decode_upright_in_rgb(tmp_path: Path, make) -> None:
    sample = make(tmp_path)
    assert_decoded(uploads.decode_upload(sample.path.read_bytes(), f"C:\\photos\\{sample.path.name}"), sample)


@pytest.mark.parametrize("make", BAD.values(), ids=BAD.keys())
def test_bad_uploads_are_one_friendly_line_naming_the_upload(tmp_path: Path, make) -> None:
    sample = make(tmp_path)
    with pytest.raises(DataError) as err:
        uploads.decode_upload(sample.path.read_bytes(), f"C:\\photos\\{sample.path.name}")
    message = uploads.friendly(err.value)
    assert sample.reason in message and f"`{sample.path.name}`" in message and "\n" not in message
