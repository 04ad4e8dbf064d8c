"""The app's logic through Streamlit's `AppTest`: every page over a tiny index, uploads good and bad."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from model.reenact import OUTPUT_SIZE
from tests.test_bad_faces import face
from tests.ui.conftest import APP_TIMEOUT, png_bytes
from tests.video_corpus import write_mp4
from ui.query_page import BROWSE, MOMENT_S
from ui.reenact_page import UPLOAD as SOURCE_UPLOAD
from ui.server import APP
from ui.settings import MAX_UPLOAD_BYTES

SIZE = 32  # the tiny model's frame side


def captions(at: AppTest) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


def memo(at: AppTest, slot: str):
    """The result a page remembered for the session (`ui.resources.session_memo`)."""
    return at.session_state[f"memo:{slot}"][1]


def browse_query(at: AppTest, k: int) -> AppTest:
    at.radio(key="query:source").set_value(BROWSE).run()
    return at.slider(key="query:k").set_value(k).run()


def test_a_browsed_frame_finds_k_frames_of_other_people(app: AppTest) -> None:
    at = browse_query(app, 5)
    assert not at.exception and not at.error, [e.value for e in at.error]
    identity = at.selectbox(key="query:identity").value
    at.select_slider(key="query:frame").set_value(2).run()
    result = memo(at, "query")
    assert len(result.hits) == 5 and identity not in set(result.hits["identity"]) and result.filtered
    shown = captions(at)
    assert shown[:2] == ["query frame", "query"]
    hits = shown[2:]
    assert len(hits) == 5 and all(caption.startswith(f"#{i + 1} ") for i, caption in enumerate(hits))
    assert all(identity not in caption for caption in hits)
    at.checkbox(key="query:other").uncheck().run()  # its own frame is then the best hit, at cosine 1
    result = memo(at, "query")
    top = result.hits.iloc[0]
    assert (top["identity"], top["frame"], round(float(top["score"]), 4)) == (identity, 2, 1.0)


def test_near_duplicates_are_collapsed_by_default_and_the_controls_change_the_hits(app: AppTest) -> None:
    """SynthVox frames lie 0.67 s apart: collapsed (the default), no two hits of one video are within a second;
    untick it and neighbouring frames come back; one hit per video, identity filters, and the CSV of the hits."""
    at = browse_query(app, 8)
    at.checkbox(key="query:other").uncheck().run()
    hits = memo(at, "query").hits
    for _, video in hits.groupby(["identity", "video"]):
        times = np.sort(video["time_s"].to_numpy())
        assert (np.diff(times) >= MOMENT_S).all(), times
    at.checkbox(key="query:collapse").uncheck().run()
    every = memo(at, "query").hits
    assert any((np.diff(np.sort(v["time_s"].to_numpy())) < MOMENT_S).any() for _, v in every.groupby("video"))
    at.number_input(key="query:per_video").set_value(1).run()
    one_each = memo(at, "query").hits
    assert not one_each.duplicated(["identity", "video"]).any() and len(one_each) == 6  # 3 people x 2 videos
    identity = one_each["identity"].iloc[0]
    at.multiselect(key="query:exclude").select(identity).run()
    assert identity not in set(memo(at, "query").hits["identity"])
    assert at.download_button(key="query:download_csv")
    csv = memo(at, "query").csv().decode().splitlines()
    assert csv[0] == ",".join(memo(at, "query").hits.columns) and len(csv) == 1 + len(memo(at, "query").hits)


def test_an_uploaded_photo_finds_k_frames_and_bad_files_only_show_a_message(app: AppTest, photo: bytes) -> None:
    uploader = app.file_uploader(key="query:upload")
    at = uploader.upload("astronaut.png", photo, "image/png").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    result = memo(at, "query")
    assert result.crop.shape == (SIZE, SIZE, 3) and len(result.hits) == 10 and not result.filtered
    assert len(captions(at)) == 11 and "no identity was dropped" in at.caption[0].value
    assert at.download_button(key="query:download")  # the grid picture is offered
    bad = {
        "corrupt.png": (photo[: len(photo) // 2], "corrupt or truncated image"),  # cut off half way
        "notes.jpg": (b"hello, not a picture", "not an image Pillow can decode"),
        "blank.png": (png_bytes(np.full((96, 96, 3), 90, np.uint8)), "no face found"),
        "huge.png": (b"\0" * (MAX_UPLOAD_BYTES + 1), "upload limit"),
    }
    for name, (content, reason) in bad.items():
        at = at.file_uploader(key="query:upload").upload(name, content, "image/png").run()
        assert not at.exception
        assert len(at.error) == 1, (name, at.error, at.info)
        message = at.error[0].value
        assert message.startswith(f"Could not use `{name}`: ") and reason in message, message
        assert not captions(at)  # no results under the message
        assert "memo:query" not in at.session_state  # a failed query drives no reenactment
    at = at.file_uploader(key="query:upload").upload("astronaut.png", photo, "image/png").run()  # still works
    assert not at.error and len(captions(at)) == 11


def test_reenact_needs_a_query_first(app: AppTest) -> None:
    at = app.sidebar.radio(key="page").set_value("Reenact").run()
    assert not at.exception and "Run a query first" in at.info[0].value


def test_reenact_renders_the_source_in_every_drivers_pose(app: AppTest, photo: bytes) -> None:
    at = browse_query(app, 3)
    query = memo(at, "query")
    at = at.sidebar.radio(key="page").set_value("Reenact").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    sources, result = memo(at, "reenact")
    assert len(sources) == 4 and result.chosen is None  # K = 4 frames of the first video
    side = OUTPUT_SIZE  # drawn from the stored crops at the product's output size, not the model's SIZE
    assert [s.shape for s in result.strips()] == [(side, 2 * side, 3)] * 4  # driver | result, per driver
    assert captions(at)[-4:] == ["query"] + [
        f"#{r.rank}  {r.identity}  ·  {r.video}/{r.frame}" for r in query.hits.itertuples()
    ]

    at = at.checkbox(key="reenact:best").check().run()  # best source frame: driver | chosen frame | result
    sources, result = memo(at, "reenact")
    assert not at.error and sources == [] and len(result.chosen) == 4
    assert all(0 <= c < 4 for c in result.chosen)
    assert [s.shape for s in result.strips()] == [(side, 3 * side, 3)] * 4
    assert at.slider(key="reenact:k").disabled

    at = at.radio(key="reenact:source").set_value(SOURCE_UPLOAD).run()
    assert "Upload one or more photos" in at.info[0].value
    at = at.file_uploader(key="reenact:upload").upload("astronaut.png", photo, "image/png").run()
    sources, result = memo(at, "reenact")
    assert not at.error and len(sources) == 1 and len(result.results) == 4
    at = (
        at.file_uploader(key="reenact:upload")
        .upload("blank.png", png_bytes(np.zeros((64, 64, 3), np.uint8)), "image/png")
        .run()
    )
    assert not at.exception and "`blank.png`: no face found" in at.error[0].value


def test_disentangle_draws_figure_7_for_a_video(app: AppTest) -> None:
    at = app.sidebar.radio(key="page").set_value("Disentangle").run()
    assert not at.exception
    figure = memo(at, "disentangle")
    assert len(figure.sources) == len(figure.source_flows) == 4  # the tiny videos have 4 frames
    assert len(figure.targets) == len(figure.flows) == len(figure.warped) == len(figure.reconstructions) == 4
    assert {img.shape for img in [*figure.flows, *figure.warped, figure.face]} == {(SIZE, SIZE, 3)}
    assert "embedded face f" in captions(at) and captions(at).count("reconstruction") == 4
    at = at.slider(key="disentangle:targets").set_value(2).run()
    assert len(memo(at, "disentangle").targets) == 2


def test_overview_counts_the_index_and_maps_its_pose_codes(app: AppTest) -> None:
    at = app.sidebar.radio(key="page").set_value("Overview").run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["24", "3", "6", "16", "flat"]
    assert at.json[0].value and '"count": 24' in at.json[0].value.replace("\n", "")
    assert "Click a point" in at.info[0].value


def test_without_an_index_the_app_says_how_to_start_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from ui.settings import ENV_CHECKPOINT, ENV_INDEX

    monkeypatch.delenv(ENV_INDEX, raising=False)
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT).run()
    assert not at.exception and "index ui --index DIR" in at.error[0].value
    monkeypatch.setenv(ENV_INDEX, str(tmp_path / "nowhere"))
    monkeypatch.setenv(ENV_CHECKPOINT, str(tmp_path / "none.safetensors"))
    at = AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT).run()
    assert not at.exception and "no such checkpoint file" in at.error[0].value


def test_a_frame_gone_from_the_collection_is_a_message_and_other_pages_still_work(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model.data.errors import DataError
    from retrieval.search import Retriever

    def gone(self, hits):
        raise DataError(hits["path"].iloc[0], "no such file")

    with monkeypatch.context() as patch:
        patch.setattr(Retriever, "hit_images", gone)
        at = app.sidebar.radio(key="page").set_value("Disentangle").run()
    message = at.error[0].value
    assert not at.exception and "A file could not be read" in message and "no such file" in message
    at = at.sidebar.radio(key="page").set_value("Overview").run()
    assert not at.exception and not at.error, [e.value for e in at.error]


def test_the_motion_page_finds_segments_of_an_uploaded_clip_and_reenacts_along_one(app: AppTest, tmp_path) -> None:
    clip = write_mp4(tmp_path / "nod.mp4", [np.roll(face(0, 128), i // 4, axis=0) for i in range(40)], fps=25)
    at = app.sidebar.radio(key="page").set_value("Motion").run()
    assert not at.exception and at.info  # asks for a clip
    at = at.file_uploader(key="motion:upload").upload("nod.mp4", clip.read_bytes(), "video/mp4").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    answer = memo(at, "motion")
    assert len(answer.found.segments) == 4 and not answer.found.segments.duplicated(["identity", "video"]).any()
    assert len(at.subheader) == 4 and at.subheader[0].value.startswith("#1 ")
    gif = Image.open(io.BytesIO(answer.side_by_side_gif(0)))
    assert gif.format == "GIF" and gif.n_frames == len(answer.strips[0]) and gif.size == (2 * SIZE, SIZE)
    at = at.button(key="motion:reenact:0").click().run()
    assert not at.exception and any("the clip's face in its pose" in c for c in captions(at))
    at = at.file_uploader(key="motion:upload").upload("notes.mp4", b"not a video", "video/mp4").run()
    assert not at.exception and len(at.error) == 1 and at.error[0].value.startswith("Could not use `notes.mp4`: ")


def test_head_pose_is_drawn_and_compared_when_asked(app: AppTest, photo: bytes) -> None:
    """dlib measures the astronaut and writes its pose under the query and, relative to it, under each hit."""
    at = app.file_uploader(key="query:upload").upload("astronaut.png", photo, "image/png").run()
    plain = captions(at)
    at = at.toggle(key="query:pose").set_value(True).run()
    assert not at.exception and not at.error
    shown = captions(at)
    assert len(shown) == len(plain) and shown[0].startswith("query\n\nyaw ") and "mouth" in shown[0]
    assert all(caption.startswith(before) for caption, before in zip(shown, plain))
    hits = shown[1:]
    assert all("(" in caption or "no face found by dlib" in caption for caption in hits)  # beside the query's
