"""An independent judge for frames without labels: dlib's 68-point landmarks and face-recognition network.

What it gives per face (`FaceMeasure`): 68 landmarks, head pose (yaw, pitch, roll in degrees) by `cv2.solvePnP` of
six landmarks on a generic 3-D face, mouth and eye openness, and a 128-d identity descriptor. The evaluation uses
them where SynthVox's ground truth is missing: pose agreement of retrieval (query vs hits), AKD (driving frame vs
reenactment) and CSIM (source vs reenactment).

AKD and CSIM count only the pairs in which dlib's detector finds both faces, and the missing-face rate says how
often it found none in a generated image whose reference has one (FOMM's convention, Siarohin et al. 2019: AKD
beside the missing keypoint rate). An image without a face gets no landmarks at all: fitting them in a box taken
from elsewhere would score an image with no face in it.

Choices (the paper is silent; these follow common practice):
- Models: dlib's HOG face detector, ``shape_predictor_68_face_landmarks.dat`` and
  ``dlib_face_recognition_resnet_model_v1.dat`` from the face-recognition-models package (the `eval` extra). Their
  folder is found with `importlib.util.find_spec`, without importing that package (its ``__init__`` imports the
  deprecated pkg_resources).
- Frames are enlarged (bicubic) to `size` pixels a side before detection: the HOG detector misses faces under
  ~80 px, and 64 px crops are common here. Landmarks come back in the frame's own pixels. One face per frame: the
  largest.
- Generic 3-D face: the six-point model widely used with solvePnP (nose tip, chin, outer eye corners, mouth
  corners; millimetre-like units), written in camera axes (x right, y down, z away from the camera). The camera has
  focal length = image width, principal point at the centre, no distortion. Angles are the x-y-z Euler angles of
  the rotation, signed like SynthVox's labels: positive yaw turns the face to image right, positive pitch lifts
  the chin, positive roll tilts the head counter-clockwise.
- Mouth openness is the inner-lip gap over the inner mouth width (points 62-66 over 60-64); eye openness is the
  eye aspect ratio of Soukupová and Čech (2016), averaged over both eyes. Both are ratios, free of image size.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.evaluation.results import AKDScores, CSIMScores, FacesDetected, LandmarkScores, MissingFaceRate

MODELS_PACKAGE = "face_recognition_models"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DESCRIPTOR_SIZE = 128  # the face-recognition network's output
HEAD_POSE_COLUMNS = ("yaw", "pitch", "roll")
MEASURE_COLUMNS = (*HEAD_POSE_COLUMNS, "mouth_open", "eye_open")

# (dlib landmark index, generic 3-D point in camera axes): nose tip, chin, outer corner of the image-left eye,
# outer corner of the image-right eye, image-left and image-right mouth corners
MODEL_POINTS = (
    (30, (0.0, 0.0, 0.0)),
    (8, (0.0, 330.0, 65.0)),
    (36, (-225.0, -170.0, 135.0)),
    (45, (225.0, -170.0, 135.0)),
    (48, (-150.0, 150.0, 125.0)),
    (54, (150.0, 150.0, 125.0)),
)
MOUTH_INNER = (60, 64, 62, 66)  # left corner, right corner, upper-lip middle, lower-lip middle (inner contour)
EYES = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))  # p1..p6 of each eye (dlib's order)


class LandmarksUnavailable(RuntimeError):
    """dlib or its models are not installed (the `eval` extra)."""


@dataclass(frozen=True)
class FaceMeasure:
    """What dlib measures on one face."""

    landmarks: np.ndarray  # (68, 2) float, pixels of the frame as given (x, y)
    yaw: float  # degrees, positive: face turned to image right
    pitch: float  # degrees, positive: chin lifted
    roll: float  # degrees, positive: head tilted counter-clockwise
    mouth_open: float  # inner-lip gap / inner mouth width
    eye_open: float  # eye aspect ratio, both eyes' mean
    descriptor: np.ndarray | None  # (DESCRIPTOR_SIZE,) dlib face-recognition descriptor, when asked for

    def pose(self) -> np.ndarray:
        """`MEASURE_COLUMNS` as one vector."""
        return np.array([getattr(self, c) for c in MEASURE_COLUMNS])


def models_folder() -> Path:
    """The folder of dlib's model files inside the face-recognition-models package."""
    spec = importlib.util.find_spec(MODELS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LandmarksUnavailable("face-recognition-models is not installed (pip install -e '.[eval]')")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class LandmarkModel:
    """dlib's detector, 68-point predictor and face-recognition network, loaded once."""

    def __init__(self, *, size: int = 256) -> None:
        try:
            import dlib
        except ImportError as err:
            raise LandmarksUnavailable("dlib is not installed (pip install -e '.[eval]')") from err
        folder = models_folder()
        for name in (PREDICTOR_FILE, RECOGNITION_FILE):
            if not (folder / name).is_file():
                raise LandmarksUnavailable(f"{folder / name} is missing")
        self.size = size
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(folder / PREDICTOR_FILE))
        self.recogniser = dlib.face_recognition_model_v1(str(folder / RECOGNITION_FILE))

    def measure(self, img: np.ndarray, *, descriptor: bool = False, side: int | None = None) -> FaceMeasure | None:
        """Measure the largest face of an RGB uint8 image `(H, W, 3)`; None when dlib finds no face. `side`: give
        the landmarks in pixels of the same picture `side` pixels on its longer side (a reenactment drawn larger
        than the frames it is compared with), not of this one."""
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (img.shape, img.dtype)
        up = self.size / max(img.shape[:2])
        big = cv2.resize(img, (round(img.shape[1] * up), round(img.shape[0] * up)), interpolation=cv2.INTER_CUBIC)
        big = np.ascontiguousarray(big)
        boxes = self.detector(big, 0)
        if len(boxes) == 0:
            return None
        box = max(boxes, key=lambda r: r.area())
        shape = self.predictor(big, box)
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) / up  # (68, 2) in frame pixels
        code = np.array(self.recogniser.compute_face_descriptor(big, shape)) if descriptor else None
        yaw, pitch, roll = head_pose(points, img.shape[1], img.shape[0])
        if side is not None:
            points = points * (side / max(img.shape[:2]))  # the angles and ratios above do not depend on it
        return FaceMeasure(points, yaw, pitch, roll, mouth_openness(points), eye_openness(points), code)


def head_pose(landmarks: np.ndarray, width: int, height: int) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of 68 landmarks `(68, 2)` in an image of `width` x `height` (module docstring)."""
    object_points = np.array([p for _, p in MODEL_POINTS], dtype=np.float64)  # (6, 3)
    image_points = np.array([landmarks[i] for i, _ in MODEL_POINTS], dtype=np.float64)  # (6, 2)
    camera = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=np.float64)
    # start from a frontal face at the distance its eye-corner span implies: without a guess the iterative solver
    # sometimes lands on the mirror solution (a face seen from behind, roll near 180 degrees)
    span_model = object_points[3, 0] - object_points[2, 0]
    span_image = max(float(np.linalg.norm(image_points[3] - image_points[2])), 1e-6)
    depth = width * span_model / span_image
    nose = image_points[0]
    guess_t = np.array([(nose[0] - width / 2) * depth / width, (nose[1] - height / 2) * depth / width, depth])
    ok, rvec, _ = cv2.solvePnP(
        object_points,
        image_points,
        camera,
        np.zeros(4),
        np.zeros(3),
        guess_t,
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        return (float("nan"),) * 3
    rotation, _ = cv2.Rodrigues(rvec)
    angles, *_ = cv2.RQDecomp3x3(rotation)  # degrees about x, y, z (camera axes)
    pitch_x, yaw_y, roll_z = angles
    # camera axes (y down, z away) turn the other way round from SynthVox's labels on all three axes
    return -float(yaw_y), -float(pitch_x), -float(roll_z)


def mouth_openness(landmarks: np.ndarray) -> float:
    """Inner-lip gap over inner mouth width of 68 landmarks."""
    left, right, top, bottom = (landmarks[i] for i in MOUTH_INNER)
    return float(np.linalg.norm(top - bottom) / max(np.linalg.norm(right - left), 1e-6))


def eye_openness(landmarks: np.ndarray) -> float:
    """Eye aspect ratio (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|), the two eyes' mean."""
    ratios = []
    for p1, p2, p3, p4, p5, p6 in EYES:
        vertical = np.linalg.norm(landmarks[p2] - landmarks[p6]) + np.linalg.norm(landmarks[p3] - landmarks[p5])
        ratios.append(vertical / max(2.0 * np.linalg.norm(landmarks[p1] - landmarks[p4]), 1e-6))
    return float(np.mean(ratios))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two descriptors."""
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def measure_images(
    model: LandmarkModel, images: Iterable[np.ndarray], *, descriptor: bool = False, side: int | None = None
) -> list[FaceMeasure | None]:
    """`LandmarkModel.measure` of each RGB uint8 image `(H, W, 3)` of a stack `(N, H, W, 3)` or any iterable of
    them (a progress bar over one) (`side` as it takes it)."""
    return [model.measure(np.ascontiguousarray(img), descriptor=descriptor, side=side) for img in images]


def detected_share(measures: list[FaceMeasure | None]) -> float:
    """Share of the images in which dlib's detector found a face; NaN for none."""
    return float(np.mean([m is not None for m in measures])) if measures else float("nan")


def missing_face_rate(reference: list[FaceMeasure | None], generated: list[FaceMeasure | None]) -> float:
    """Share of the pairs whose reference image has a face in which the generated image has none; NaN when no
    reference has one."""
    kept = [g for r, g in zip(reference, generated, strict=True) if r is not None]
    return float(np.mean([g is None for g in kept])) if kept else float("nan")


def where_found(*measures: list[FaceMeasure | None]) -> np.ndarray:
    """(N,) bool: True where every list has a face at that position."""
    return np.array([all(m is not None for m in row) for row in zip(*measures, strict=True)], dtype=bool)


def pose_values(measures: list[FaceMeasure | None]) -> np.ndarray:
    """(N, 5) `MEASURE_COLUMNS` per face, a NaN row where no face was found."""
    return np.array([m.pose() if m is not None else np.full(len(MEASURE_COLUMNS), np.nan) for m in measures])


def akd(a: list[FaceMeasure | None], b: list[FaceMeasure | None]) -> tuple[float, int]:
    """Average keypoint distance: mean Euclidean distance in pixels between the 68 corresponding landmarks of each
    pair, averaged over the pairs where both faces were found; (NaN, 0) when none was."""
    distances = [
        np.linalg.norm(x.landmarks - y.landmarks, axis=1).mean()
        for x, y in zip(a, b, strict=True)
        if x is not None and y is not None
    ]
    return (float(np.mean(distances)), len(distances)) if distances else (float("nan"), 0)


def csim(a: list[FaceMeasure | None], b: list[FaceMeasure | None]) -> tuple[float, int]:
    """Mean cosine similarity of the face-recognition descriptors of each pair where both faces were found."""
    sims = [
        cosine(x.descriptor, y.descriptor)
        for x, y in zip(a, b, strict=True)
        if x is not None and y is not None and x.descriptor is not None and y.descriptor is not None
    ]
    return (float(np.mean(sims)), len(sims)) if sims else (float("nan"), 0)


def reenactment_scores(
    driving: list[FaceMeasure | None],
    source: list[FaceMeasure | None],
    reenacted: list[FaceMeasure | None],
    *,
    same_person: tuple[float, int],
) -> LandmarkScores:
    """dlib's verdict on row-aligned (driving frame, source frame, reenactment) triples: faces detected, the
    missing-face rate (of the reenactments, and of the unchanged source frames as baseline), AKD to the driver of
    the reenactment and of the source frame over the same pairs (all three faces found; the source frame's also
    over every pair with both its faces, ``source_all``), and CSIM of the reenactment to the source beside
    `same_person` ((CSIM, pairs) of two frames of the source person)."""
    found = where_found(driving, source, reenacted)

    def kept(measures: list[FaceMeasure | None]) -> list[FaceMeasure | None]:
        return [m for m, k in zip(measures, found) if k]

    akd_model, pairs = akd(kept(driving), kept(reenacted))
    akd_source, _ = akd(kept(driving), kept(source))
    akd_source_all, source_pairs = akd(driving, source)
    csim_model, csim_pairs = csim(source, reenacted)
    reference, reference_pairs = same_person
    return LandmarkScores(
        FacesDetected(detected_share(reenacted), detected_share(driving), detected_share(source)),
        MissingFaceRate(missing_face_rate(driving, reenacted), missing_face_rate(driving, source)),
        AKDScores(akd_model, akd_source, pairs, akd_source_all, source_pairs),
        CSIMScores(
            csim_model,
            csim_pairs,
            reference,
            reference_pairs,
            csim_model / reference if reference > 0 else float("nan"),
        ),
    )
