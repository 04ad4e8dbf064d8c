"""`index serve`'s HTTP JSON API over one index (FastAPI): query by photo or indexed frame, frames, reenactment.

Endpoints (the OpenAPI page at /docs and /openapi.json documents each, with its response models):
- `GET /healthz`: `{"status": "ok"}` once the model and the index are loaded.
- `GET /info`: counts, code length, index type, metric, the checkpoint's sha256, versions.
- `POST /query` (multipart form): a photo `image` or an indexed `frame_id`, with `k` and the hit rules of
  `index query` (`other_identities`, `identity`, `per_video`, `per_identity`, `moment_s`, `exclude`, `only`); the
  answer is exactly the JSON array `index query --json` prints for the same photo.
- `GET /frames/{frame_id}`: the indexed frame as PNG.
- `POST /reenact` (multipart form): a `source` photo and a `driving` photo or `frame_id`; the source face in the
  driver's pose as a PNG (`model.reenact.output_size` a side: 128 px for the small model, drawn from the source
  photo's own pixels); the `X-Renderer` header says which network drew it.

Choices (the issue leaves them open):
- Bad input is a JSON `{"detail": "<one line>"}`, never a traceback: an upload that is not an image, is cut short
  or shows no face is 400 naming the upload (`ui.uploads.decode_upload`, as the UI says it); an upload over
  `MAX_UPLOAD_MB` is 413; an unknown frame 404. Malformed parameters (`k=0`) get FastAPI's 422 with the field.
- Uploads are bounded as the UI bounds them (16 MB and 50 megapixels per picture, Pillow's bomb guard on), and
  a whole request at `MAX_REQUEST_BYTES` (two pictures and the form around them), refused from its
  Content-Length before it is read. Upload names are labels, never paths. Starlette's form parser keeps an upload
  over 1 MB in an anonymous temporary file (no name on disk) until the request ends; nothing is kept after.
- Frames are read only from inside the index's collection roots (`Retriever.hit_images`).
- Served on loopback, only `Host` headers naming loopback are answered (`local_hosts`): a web page cannot turn its
  own domain name into 127.0.0.1 (DNS rebinding) and read the index through a visitor's browser. No CORS headers
  are sent, so other sites' pages cannot read the answers either.
"""

from __future__ import annotations

import io
from typing import Annotated, Literal

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, Field

from model import __version__
from model.data.errors import DataError
from retrieval.hit_rules import HitRules
from retrieval.search import Retriever
from ui.served_index import ServedIndex, UnknownFrame
from ui.settings import MAX_UPLOAD_BYTES, is_loopback
from ui.uploads import decode_upload, upload_name

MAX_K = 100  # hits one query may ask for
MAX_REQUEST_BYTES = 2 * MAX_UPLOAD_BYTES + 2**20  # /reenact's two pictures and 1 MiB of form around them
PNG = {"image/png": {}}


class Hit(BaseModel):
    """One hit, as `index query --json` prints it."""

    rank: int = Field(description="1 = best")
    score: float = Field(description="cosine similarity of the pose codes, rounded to 6 places")
    id: int = Field(description="the frame's id in the index: GET /frames/{id}, or POST /query with frame_id")
    identity: str
    video: str
    frame: int = Field(description="frame number within the video")
    path: str = Field(description="the frame's stored path, relative to its collection root")


class Info(BaseModel):
    """What the served index holds and which model reads it."""

    num_frames: int
    num_identities: int
    num_videos: int
    num_vectors: int = Field(description="pose codes in the FAISS index (equal to num_frames)")
    dim: int = Field(description="length of a pose code")
    index_type: str = Field(description="the FAISS index's kind, e.g. flat")
    metric: str
    checkpoint_sha256: str = Field(description="the model the index was built with, and that answers queries")
    created: str = Field(description="when the index was built (UTC)")
    index_version: str = Field(description="the posedex version that built the index")
    version: str = Field(description="the posedex version serving it")


class Health(BaseModel):
    status: Literal["ok"]


class Problem(BaseModel):
    """Why a request was refused: one line naming the upload or frame and the reason."""

    detail: str


ERRORS = {
    400: {"model": Problem, "description": "bad input: an upload that cannot be used, or a bad combination"},
    413: {"model": Problem, "description": "an upload over the size limit"},
}
NOT_FOUND = {404: {"model": Problem, "description": "no such frame, or its picture cannot be read"}}


def local_hosts(host: str) -> list[str] | None:
    """The `Host` header names a server bound to `host` answers: loopback names only when `host` is loopback,
    else None (any: the server is on the network on purpose, and the launcher has said so)."""
    if not is_loopback(host):
        return None
    bound = host.strip().lower()
    bound = f"[{bound.strip('[]')}]" if ":" in bound else bound  # an IPv6 Host header is bracketed
    return sorted({"localhost", "127.0.0.1", "[::1]", bound})


def create_app(retriever: Retriever, *, allowed_hosts: list[str] | None = None) -> FastAPI:
    """The API over `retriever`, which stays open while the app serves; `allowed_hosts` (None: any) names the
    `Host` headers answered (`local_hosts`)."""
    served = ServedIndex(retriever)
    app = FastAPI(
        title="posedex",
        version=__version__,
        max_body_size=MAX_REQUEST_BYTES,
        description="Find faces by pose in a FAISS index of pose codes, and reenact them (DAE-GAN).",
    )
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.exception_handler(DataError)
    def unusable(request: Request, err: DataError) -> JSONResponse:  # a photo without a face
        return JSONResponse({"detail": str(err)}, status_code=400)

    @app.exception_handler(UnknownFrame)
    def unknown(request: Request, err: UnknownFrame) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=404)

    @app.get("/healthz")
    def healthz() -> Health:
        """Whether the server is up (the model and the index load before it starts)."""
        return Health(status="ok")

    @app.get("/info")
    def info() -> Info:
        """Counts, code length, index type and the model of the served index."""
        return Info(**served.info(), version=__version__)

    @app.post("/query", responses=ERRORS | NOT_FOUND)
    def query(
        image: Annotated[
            UploadFile | None, File(description="a photo (JPEG, PNG, ...): its largest face is the query")
        ] = None,
        frame_id: Annotated[int | None, Form(ge=0, description="or an indexed frame's id")] = None,
        k: Annotated[int, Form(ge=1, le=MAX_K, description="number of hits")] = 10,
        other_identities: Annotated[
            bool, Form(description="drop hits of the query's own identity (a frame's, or `identity` for a photo)")
        ] = False,
        identity: Annotated[str | None, Form(description="the photo's identity, for other_identities")] = None,
        per_video: Annotated[int | None, Form(ge=1, description="at most N hits from one video")] = None,
        per_identity: Annotated[int | None, Form(ge=1, description="at most N hits of one identity")] = None,
        moment_s: Annotated[
            float | None,
            Form(ge=0, description="drop a hit within this many seconds of a better hit of the same video"),
        ] = None,
        exclude: Annotated[list[str], Form(description="never return these identities")] = [],
        only: Annotated[list[str], Form(description="return only these identities")] = [],
    ) -> list[Hit]:
        """The `k` indexed frames nearest in pose to a photo's face or to an indexed frame, best first: the JSON
        `index query --json` prints."""
        image = _given(image)
        if (image is None) == (frame_id is None):
            raise HTTPException(400, "give an image or a frame_id, not both")
        rules = HitRules(
            per_video=per_video,
            per_identity=per_identity,
            moment_s=moment_s,
            exclude=frozenset(exclude),
            only=frozenset(only) if only else None,
        )
        if frame_id is not None:
            return served.query_frame(frame_id, k, rules=rules, other_identities=other_identities)
        img, name = _decoded(image)
        if other_identities and identity is None:
            raise HTTPException(
                400, f"{name}: other_identities needs the photo's identity: give identity, or query by frame_id"
            )
        return served.query_photo(img, name, k, rules=rules, other_identities=other_identities, identity=identity)

    @app.get(
        "/frames/{frame_id}",
        response_class=Response,
        responses={200: {"content": PNG, "description": "the frame as stored"}} | NOT_FOUND,
    )
    def frame(frame_id: Annotated[int, Path(ge=0)]) -> Response:
        """An indexed frame's picture (PNG), read from inside the index's collection folders."""
        return Response(png(served.frame(frame_id)), media_type="image/png")

    @app.post(
        "/reenact",
        response_class=Response,
        responses={200: {"content": PNG, "description": "the source face in the driver's pose, S x S"}}
        | ERRORS
        | NOT_FOUND,
    )
    def reenact(
        source: Annotated[UploadFile, File(description="a photo of the source person")],
        driving: Annotated[UploadFile | None, File(description="a photo in the driving pose")] = None,
        frame_id: Annotated[int | None, Form(ge=0, description="or an indexed frame as the driver")] = None,
    ) -> Response:
        """The source photo's face in the pose of a driving photo's face or of an indexed frame (PNG)."""
        driving = _given(driving)
        if (driving is None) == (frame_id is None):
            raise HTTPException(400, "give a driving photo or a frame_id, not both")
        img, name = _decoded(source)
        drive, drive_name = _decoded(driving) if driving is not None else (None, "driving")
        result = served.reenact(img, name, driving=drive, driving_name=drive_name, frame_id=frame_id)
        return Response(png(result.face), media_type="image/png", headers={"X-Renderer": result.renderer})

    return app


def png(img: np.ndarray) -> bytes:
    """RGB uint8 `(H, W, 3)` as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG", compress_level=1)  # speed over size: made per request
    return buffer.getvalue()


def _given(upload: UploadFile | None) -> UploadFile | None:
    """None for a file field sent empty (a form's unused file input), else the upload."""
    if upload is None or (not upload.filename and not upload.size):
        return None
    return upload


def _decoded(upload: UploadFile) -> tuple[np.ndarray, str]:
    """An upload as RGB uint8 and the name it is labelled by; HTTP 413 over the size limit, 400 when unusable."""
    data = upload.file.read()  # bounded by MAX_REQUEST_BYTES
    name = upload_name(upload.filename or "upload")  # a label: never a path to open
    try:
        return decode_upload(data, name), name
    except DataError as err:
        raise HTTPException(413 if len(data) > MAX_UPLOAD_BYTES else 400, str(err)) from err
