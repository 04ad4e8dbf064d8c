"""SynthVox's 3D renderer: one head in one pose in one scene, ray cast into an RGB frame (pure numpy, vectorised).

The head is a handful of analytic surfaces in head-local coordinates (cranium and jaw ellipsoids, nose, ears, a
hair shell and, for long hair, a hanging volume); neck and shoulders stay in world coordinates. Each pixel's ray
is intersected with every surface in closed form and the nearest hit wins, so a turned head shows its side, the
nose hides the far cheek and the far eye foreshortens: geometry, not a 2D sprite. Facial features (eyes with
lids, brows, lips and mouth) are painted as a function of the hit point in head-local coordinates, so they move,
foreshorten and get occluded with the surface they lie on.

Choices made:
- Units are "head units": the cranium's half-height is about 1. Head-local axes: x to the subject's left (image
  right when frontal), y up, z out of the face towards the camera.
- Pose convention: positive yaw turns the face towards image right, positive pitch lifts the chin, positive
  roll tilts the head counter-clockwise in the image. The head turns about a neck pivot below its centre.
- Pinhole camera on the +z axis looking down -z, a ~25 degree field of view: perspective like a webcam at arm's
  length. The scene (`synthvox_scene.Scene`) scales and shifts the image window (a crop, the camera stays) and
  places the one light: Lambert plus ambient shading and a broad skin highlight, tinted by the light's colour.
- Feature edges are anti-aliased with a one-pixel ramp on approximate signed distances; silhouettes are not
  (one ray per pixel keeps 128 px frames at a few milliseconds).
- Heads are left/right symmetric by construction (features are painted on |x|), and so is the neutral scene: a
  pose and its mirror render there as mirror images, which the tests use as a check of the geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from model.data.synthvox import Identity
    from model.data.synthvox_motion import Pose
    from model.data.synthvox_scene import Scene

CAMERA_DISTANCE = 6.0  # head units from camera to head centre: mild perspective, like a webcam at arm's length
FRAME_HALF_HEIGHT = 1.35  # half the frame's side at the head's depth (head scale 1): a detector-friendly face
FRAME_CENTRE_Y = -0.3  # the frame is centred below the head centre, leaving room for neck and shoulders
CAMERA = np.array([0.0, 0.0, CAMERA_DISTANCE])  # world coordinates, looking down -z at the head
PIVOT = np.array([0.0, -0.7, -0.15])  # the neck joint the head turns about, in head-local coordinates
AMBIENT = 0.5  # light reaching surfaces facing away from the lamp: keeps the turned side readable
DIFFUSE = 0.55  # Lambert strength; AMBIENT + DIFFUSE slightly above 1 lets lit skin reach its full albedo
SPECULAR = 0.12  # skin sheen (Blinn-Phong): lights forehead, nose bridge and cheekbones, as in photographs
SHININESS = 12.0  # a broad highlight: skin is not glossy
SMOOTH_UNION = 0.15  # cranium and jaw normals blend across this band of implicit values: no crease where they meet
HAIR_INSIDE_SHADE = 0.45  # the inside of a hair shell (seen past a turned face) lies in its own shadow
NECK_SHADE = 0.8  # the neck sits in the jaw's shadow

# Head geometry in head units, tuned against OpenCV's frontal Haar cascade and by eye (see docs/ contact sheet).
JAW_CENTRE = (0.0, -0.32, 0.06)  # lower face ellipsoid, its radii per identity
JAW_DROP = 0.06  # how far the chin drops with a fully open mouth
JAW_DEPTH = 0.92  # jaw depth relative to the cranium's: the lower face sits slightly behind the forehead
NOSE_Y = -0.12  # nose centre height (eyes sit above, mouth below)
FACE_FRONT_AT_NOSE = 0.97  # the face surface at nose height, relative to the cranium's depth
NOSE_SUNK = 0.35  # share of the nose ellipsoid's depth sunk into the face: 65% protrudes
NOSTRIL_AT = (0.45, -0.75)  # nostril centres on the nose's unit sphere: either side, underneath
NOSTRIL_RADIUS = 0.3  # on the nose's unit sphere
NOSTRIL_DARKNESS = 0.6  # nostrils keep 40% of the skin's brightness
EAR_INSET = 0.97  # ear centres, relative to the cranium's half-width: they sit on its side
EAR_Y, EAR_Z = -0.05, -0.05  # ear centre height and depth (just behind the head centre)
EAR_RADII = (0.08, 0.2, 0.13)  # thin, tall ears, scaled per identity
EAR_SHADE = 0.92  # ears sit a little in the head's shadow
HAIR_CENTRE = np.array([0.0, 0.05, -0.05])  # the hair shell sits slightly above and behind the cranium
HANG_CENTRE = np.array([0.0, -0.55, -0.3])  # long hair hangs behind the neck...
HANG_HALF_LENGTH = 1.2  # ...down to the shoulders
HANG_SPREAD = (1.12, 0.8)  # its half-width and half-depth relative to the cranium's
HANG_SLANT, HANG_FRONT = 0.3, 0.05  # hanging hair only behind the plane z = 0.3 y + 0.05: never over the face
HANG_BOTTOM = -1.7  # and not below the chest
STRAND_CONTRAST = 0.24  # strands are up to this much darker than the hair colour
STRAND_WAVE, STRAND_WAVE_FREQUENCY = 3.0, 2.0  # strands meander by this phase, this often per head unit
NECK_RADIUS = 0.36  # the neck as a vertical cylinder in world coordinates
NECK_Z = -0.15  # the neck's axis sits a little behind the head centre
NECK_TOP = -0.45  # the neck's top is hidden inside the jaw
TORSO_CENTRE = np.array([0.0, -2.45, -0.25])  # shoulders: an ellipsoid under the head, bottom of the frame
TORSO_RADII = np.array([1.6, 0.9, 0.75])

# Painted features, in head units on the face surface.
SOCKET_DARKENING = 0.5  # eye sockets are shadowed: the dark-eyes/light-cheeks pattern face detectors rely on
EYE_ASPECT = 0.48  # eye opening's half-height relative to its half-width
SOCKET_SPAN = (1.9, 3.4)  # the shadowed socket's extent relative to the eye's half-width and half-height
SOCKET_RISE = 0.03  # the socket's shadow is centred slightly above the eye, towards the brow
LOWER_LID = 0.8  # the lower lid's curve relative to the upper: the eye is fuller above its centre line
LASH_WIDTH = 0.022  # half-width of the dark upper lash line
IRIS_RATIO = 1.15  # iris radius relative to the eye opening's half-height: most of the open eye is iris
PUPIL_RATIO = 0.45  # pupil radius relative to the iris
BROW_GAP = 0.19  # brow height above the eye centre at rest
BROW_LIFT = 0.08  # extra brow height at brow_raise = 1
BROW_SPAN = 1.25  # brow half-length relative to the eye's half-width
BROW_TAPER = 0.4  # the brow thins by this share from its inner half to its outer end
MOUTH_Y = -0.5  # mouth centre height
MOUTH_OPEN_MAX = 0.13  # mouth opening's half-height at mouth_open = 1
MOUTH_SEAM = 0.012  # half-width of the dark line between closed lips
JAW_SHARE = 0.7  # share of the opening made by the lower lip moving down (the jaw drops; the upper lip stays)
LOWER_LIP = 1.2  # lower lip thickness relative to the upper
TEETH_HEIGHT = 0.035  # visible upper teeth below the upper lip when the mouth opens
SCLERA = np.array([0.75, 0.73, 0.7])  # eye whites, dimmed: at 128 px an eye reads as a dark spot
PUPIL = np.array([0.04, 0.03, 0.03])
LASH = np.array([0.08, 0.06, 0.05])
MOUTH_INSIDE = np.array([0.22, 0.06, 0.07])
TEETH = np.array([0.92, 0.9, 0.84])


ABOVE_HEAD = 9.0  # a height no head reaches: a hairline there means no hair


@dataclass(frozen=True)
class Smile:
    """How a smile = 1 changes the mouth (the mouth's units, as the constants above)."""

    curve: float  # how far the mouth corners rise
    widen: float  # the mouth's half-width grows by this share
    part: float  # the lips part by this half-height, showing the upper teeth


# Recipe version 3: the corners rise, the mouth widens and the lips part over the teeth, as the zygomaticus pulls
# the corners up and out; 24-65 pixels of a 64-px frame change by 20 levels or more (a blink: 37-61).
SMILE = Smile(curve=0.1, widen=0.3, part=0.03)
# Versions 1 and 2 only raised the corners: 10-37 pixels at 64 px, a rise under a pixel that no encoder read
# (benchmarks/label_ceiling.py). Kept so that their collections re-render as they were written.
SMILE_V2 = Smile(curve=0.07, widen=0.0, part=0.0)


@dataclass(frozen=True)
class HairStyle:
    """Where hair covers the head: hairline heights (head units) at the front, sides and back, and its volume."""

    front_y: float  # hairline height above the forehead; ABOVE_HEAD means no hair at the front
    side_y: float  # lowest hair at the temples/ears; low values frame the face
    back_y: float  # lowest hair at the back of the head
    shell_scale: float  # hair shell radii relative to the cranium
    hangs: bool  # long hair hanging behind the neck to the shoulders
    top_y: float = math.inf  # hair only below this height (the bald horseshoe)


HAIR_STYLES: dict[str, HairStyle] = {
    "short": HairStyle(front_y=0.58, side_y=0.18, back_y=-0.45, shell_scale=1.07, hangs=False),
    "long": HairStyle(front_y=0.6, side_y=-1.1, back_y=-1.1, shell_scale=1.1, hangs=True),
    "bald": HairStyle(front_y=ABOVE_HEAD, side_y=-0.3, back_y=-0.4, shell_scale=1.04, hangs=False, top_y=0.25),
    "fringe": HairStyle(front_y=0.44, side_y=-0.2, back_y=-0.6, shell_scale=1.09, hangs=False),
    "bob": HairStyle(front_y=0.52, side_y=-0.62, back_y=-0.62, shell_scale=1.12, hangs=False),
    "afro": HairStyle(front_y=0.55, side_y=0.05, back_y=-0.5, shell_scale=1.32, hangs=False),
}
FACE_FRONT_COS = 0.6  # on the hair shell, directions within ~53 degrees of straight ahead belong to the face
FACE_EDGE_SOFTNESS = 0.12  # the hairline bends from the forehead height to the side height over this cos range

BACKGROUND, FACE, NOSE, EARS, HAIR, NECK, TORSO = range(-1, 6)  # what a pixel shows; FACE: cranium and jaw


Framing = tuple[float, float, float]  # the image window at the head's depth: half its side, its centre x and y


def _framing(scene: Scene) -> Framing:
    """The image window of a scene: the head scale shrinks it, the head offset moves it the other way."""
    half = FRAME_HALF_HEIGHT / scene.head_scale
    offset_x, offset_y = scene.head_offset
    return half, -offset_x * 2.0 * half, FRAME_CENTRE_Y + offset_y * 2.0 * half


@lru_cache(maxsize=8)
def _camera_rays(size: int, framing: Framing) -> np.ndarray:
    """Ray directions through pixel centres, world coordinates: `(3, size * size)`, columns in raster order."""
    half, centre_x, centre_y = framing
    coords = ((np.arange(size) + 0.5) / size * 2.0 - 1.0) * (half / CAMERA_DISTANCE)
    ys, xs = np.meshgrid(-coords, coords, indexing="ij")  # image rows go down, y goes up
    rays = np.stack(
        [xs.ravel() + centre_x / CAMERA_DISTANCE, ys.ravel() + centre_y / CAMERA_DISTANCE, -np.ones(size * size)]
    )
    rays.setflags(write=False)
    return rays  # (3, N), not normalised: t is then depth along -z


def head_rotation(pose: Pose) -> np.ndarray:
    """The `(3, 3)` rotation taking head-local vectors to world: roll · pitch · yaw (yaw applied first)."""
    yaw, pitch, roll = np.radians([pose.yaw, pose.pitch, pose.roll])
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rot_yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    rot_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])  # +pitch: the face tips up
    rot_roll = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return rot_roll @ rot_pitch @ rot_yaw


def _candidates(centre: np.ndarray, radius: float, rot: np.ndarray, size: int, framing: Framing) -> np.ndarray:
    """Flat indices of the pixels whose rays may hit a sphere (head-local `centre`, `radius`): its screen box.

    Testing only these rays is what keeps the renderer fast: small parts (nose, ears) cost a few hundred rays.
    """
    x, y, z = (float(c) for c in rot @ (centre - PIVOT) + PIVOT)  # world; plain floats: scalar maths is cheaper
    depth = CAMERA_DISTANCE - z
    if depth <= radius * 2.0:  # too close to bound cheaply (never for SynthVox's heads): every ray
        return np.arange(size * size)
    near, far = depth - radius, depth + radius
    us = ((x - radius) / near, (x - radius) / far, (x + radius) / near, (x + radius) / far)
    vs = ((y - radius) / near, (y - radius) / far, (y + radius) / near, (y + radius) / far)
    half, centre_x, centre_y = (c / CAMERA_DISTANCE for c in framing)  # on the ray plane z = -1
    scale = size / 2.0 / half  # pixels per unit of ray-plane coordinate
    c0 = max(0, math.floor((min(us) - centre_x) * scale + size / 2.0 - 0.5))
    c1 = min(size, math.ceil((max(us) - centre_x) * scale + size / 2.0 - 0.5) + 1)
    r0 = max(0, math.floor((centre_y - max(vs)) * scale + size / 2.0 - 0.5))
    r1 = min(size, math.ceil((centre_y - min(vs)) * scale + size / 2.0 - 0.5) + 1)
    return (np.arange(r0, r1)[:, None] * size + np.arange(c0, c1)[None, :]).ravel()


def _ellipsoid(origin: np.ndarray, rays: np.ndarray, centre, radii) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersect rays `(3, M)` with an axis-aligned ellipsoid: `(hit, near, far)`, the indices of the rays that
    hit it and their entry and exit ray parameters."""
    inv2 = 1.0 / np.asarray(radii, dtype=float) ** 2
    oc = origin - np.asarray(centre, dtype=float)
    dx, dy, dz = rays
    a = dx * dx * inv2[0] + dy * dy * inv2[1] + dz * dz * inv2[2]
    b = dx * (oc[0] * inv2[0]) + dy * (oc[1] * inv2[1]) + dz * (oc[2] * inv2[2])
    disc = b * b - a * (oc @ (oc * inv2) - 1.0)
    hit = np.flatnonzero(disc > 0.0)
    root, a, b = np.sqrt(disc[hit]), a[hit], b[hit]
    return hit, (-b - root) / a, (-b + root) / a


def _neck(origin: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Ray parameter of the near side of the neck cylinder (vertical, world coordinates, below NECK_TOP)."""
    dx, dy, dz = rays
    ox, oz = origin[0], origin[2] - NECK_Z
    a = dx * dx + dz * dz
    b = dx * ox + dz * oz
    disc = b * b - a * (ox * ox + oz * oz - NECK_RADIUS**2)
    t = np.where(disc > 0.0, (-b - np.sqrt(np.maximum(disc, 0.0))) / a, np.inf)
    return np.where(origin[1] + t * dy < NECK_TOP, t, np.inf)


def _hair_covers(points: np.ndarray, style: HairStyle) -> np.ndarray:
    """Whether hair covers head-local points `(3, M)`: above the style's hairline, which depends on direction."""
    x, y, z = points[0], points[1] - HAIR_CENTRE[1], points[2]
    cos_front = z / np.maximum(np.hypot(x, z), 1e-9)  # 1 straight ahead, 0 at the ears, -1 at the back
    front = np.clip((cos_front - FACE_FRONT_COS + FACE_EDGE_SOFTNESS) / FACE_EDGE_SOFTNESS, 0.0, 1.0)
    back = np.clip(-cos_front, 0.0, 1.0)
    hairline = np.where(
        cos_front > 0.0,
        style.side_y + (style.front_y - style.side_y) * front,
        style.side_y + (style.back_y - style.side_y) * back,
    )
    return (y > hairline) & (y < style.top_y)


def _shell_hits(origin, rays, centre, radii, covers) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest covered hit of a partial shell (`covers(points (3, K)) -> bool (K,)`) for rays `(3, M)`:
    `(hit, t, inside)`, the indices of the rays that hit it, their ray parameters, and whether seen from within."""
    hit, near, far = _ellipsoid(origin, rays, centre, radii)
    sub = rays[:, hit]
    front = covers(origin[:, None] + near * sub)
    back = ~front & covers(origin[:, None] + far * sub)
    keep = front | back
    return hit[keep], np.where(front, near, far)[keep], back[keep]


def _coverage(signed_distance: np.ndarray, pixel: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape given a signed distance (negative inside) and the pixel size."""
    return np.clip(0.5 - signed_distance / pixel, 0.0, 1.0)


def _paint(albedo: np.ndarray, colour, amount: np.ndarray) -> np.ndarray:
    """Blend a colour into albedo `(M, 3)` by per-point amount `(M,)` in [0, 1]."""
    return albedo + (np.asarray(colour) - albedo) * amount[:, None]


def _face_texture(identity: Identity, pose: Pose, p: np.ndarray, pixel: float, smile: Smile) -> np.ndarray:
    """Skin albedo with eyes, brows and mouth painted at head-local points `p` `(M, 3)` of the face surfaces; a
    smile shaped as `smile` says."""
    skin = np.asarray(identity.skin)
    albedo = np.broadcast_to(skin, p.shape).copy()
    x, y, front = np.abs(p[:, 0]), p[:, 1], (p[:, 2] > 0.0)
    # Eyes: a shadowed socket, an almond opening closed from above by the lid, iris and pupil, a dark lash line.
    ex, ey = x - identity.eye_spacing, y - identity.eye_y
    ew, eh = identity.eye_size, identity.eye_size * EYE_ASPECT
    socket = np.clip(1.0 - np.hypot(ex / (ew * SOCKET_SPAN[0]), (ey - SOCKET_RISE) / (eh * SOCKET_SPAN[1])), 0.0, 1.0)
    albedo *= 1.0 - SOCKET_DARKENING * np.sqrt(socket)[:, None] * front[:, None]
    lens = np.clip(1.0 - (ex / ew) ** 2, 0.0, None)
    lower = -eh * LOWER_LID * lens
    upper = lower + (eh * lens - lower) * (1.0 - pose.blink)
    opening = np.maximum(lower - ey, ey - upper)  # signed distance across the opening, negative inside
    open_cov = _coverage(opening, pixel) * (lens > 0.0) * front
    iris_r = eh * IRIS_RATIO
    iris = np.hypot(ex, ey)
    eye = _paint(np.broadcast_to(SCLERA, p.shape), identity.eye_color, _coverage(iris - iris_r, pixel))
    eye = _paint(eye, PUPIL, _coverage(iris - iris_r * PUPIL_RATIO, pixel))
    albedo = _paint(albedo, eye, open_cov)
    lash = _coverage(np.abs(ey - upper) - LASH_WIDTH, pixel) * (np.abs(ex) < ew) * front
    albedo = _paint(albedo, LASH, lash)
    # Brows: a dark arched band that lifts with brow_raise, tapering to the outside.
    bx = ex / (ew * BROW_SPAN)  # -1 at the brow's inner end, +1 at its outer end
    brow_y = identity.eye_y + BROW_GAP + BROW_LIFT * pose.brow_raise + identity.brow_arch * (1.0 - bx**2)
    brow_half = identity.brow_thickness * (1.0 - BROW_TAPER * np.clip(bx + 0.5, 0.0, 1.0))
    brow = _coverage(np.maximum(np.abs(y - brow_y) - brow_half, np.abs(bx) - 1.0), pixel) * front
    albedo = _paint(albedo, identity.brow_color, brow)
    # Mouth: a curved seam that smiles, opens with the jaw, shows the upper teeth, framed by lips.
    mx = p[:, 0] / (identity.mouth_width * (1.0 + smile.widen * pose.smile))
    width = np.sqrt(np.clip(1.0 - mx**2, 0.0, None))
    centre = MOUTH_Y + smile.curve * pose.smile * mx**2  # corners rise, the middle stays
    gap = (MOUTH_OPEN_MAX * pose.mouth_open + smile.part * pose.smile) * width
    top = centre + MOUTH_SEAM * width + (1.0 - JAW_SHARE) * gap
    bottom = centre - MOUTH_SEAM * width - JAW_SHARE * gap
    inside = _coverage(np.maximum(bottom - y, y - top), pixel) * (width > 0.0) * front
    lip = identity.lip_thickness * width
    lips = np.maximum(bottom - LOWER_LIP * lip - y, y - top - lip)
    lips_cov = _coverage(np.maximum(lips, np.abs(mx) - 1.0), pixel) * front
    albedo = _paint(albedo, identity.lip_color, lips_cov)
    shows_teeth = y > top - TEETH_HEIGHT * min(1.0, pose.mouth_open + (smile.part > 0) * pose.smile)
    mouth = _paint(np.broadcast_to(MOUTH_INSIDE, p.shape), TEETH, shows_teeth * 1.0)
    return _paint(albedo, mouth, inside)  # (M, 3)


def _hair_texture(identity: Identity, p: np.ndarray) -> np.ndarray:
    """Hair albedo at head-local points `(M, 3)`: the hair colour with fine strands running down the head."""
    angle = np.arctan2(np.abs(p[:, 0]), p[:, 2])  # |x|: a symmetric parting
    waves = STRAND_WAVE * np.sin(p[:, 1] * STRAND_WAVE_FREQUENCY)  # strands meander as they run down
    strands = 1.0 - STRAND_CONTRAST * (1.0 - np.sin(angle * identity.hair_strands + waves)) / 2.0
    return np.asarray(identity.hair_color) * strands[:, None]


def render_frame(identity: Identity, pose: Pose, size: int, scene: Scene, smile: Smile = SMILE) -> np.ndarray:
    """Ray cast `identity` in `pose` in `scene`, smiling as `smile` shapes it: an RGB frame `(size, size, 3)` uint8,
    same inputs giving the same bytes."""
    framing = _framing(scene)
    rays = _camera_rays(size, framing)  # (3, N) world
    rot = head_rotation(pose)
    origin = rot.T @ (CAMERA - PIVOT) + PIVOT  # the camera in head-local coordinates
    local = rot.T @ rays  # (3, N) head-local ray directions
    style = HAIR_STYLES[identity.hair_style]
    cranium_c, cranium_r = np.zeros(3), np.array([identity.head_width, identity.head_height, identity.head_depth])
    jaw_c = np.array(JAW_CENTRE) - [0.0, JAW_DROP * pose.mouth_open, 0.0]
    jaw_r = np.array([identity.jaw_width, identity.jaw_height, identity.head_depth * JAW_DEPTH])
    nose_c = np.array([0.0, NOSE_Y, identity.head_depth * FACE_FRONT_AT_NOSE - identity.nose_depth * NOSE_SUNK])
    nose_r = np.array([identity.nose_width, identity.nose_length, identity.nose_depth])
    ear_r = np.array(EAR_RADII) * identity.ear_size
    ear_x = identity.head_width * EAR_INSET
    hair_r = cranium_r * style.shell_scale
    hang_r = np.array([identity.head_width * HANG_SPREAD[0], HANG_HALF_LENGTH, identity.head_depth * HANG_SPREAD[1]])

    # (N,) each: start from the static body
    depth, surface, body_shade = (a.copy() for a in _body(size, framing, scene.light_direction))
    inside = np.zeros(size * size, dtype=bool)  # hair seen from within its shell

    def composite(kind: int, idx: np.ndarray, t: np.ndarray, seen_inside: np.ndarray | None = None) -> None:
        closer = t < depth[idx]
        idx = idx[closer]
        depth[idx], surface[idx] = t[closer], kind
        inside[idx] = False if seen_inside is None else seen_inside[closer]

    solids = [
        (FACE, cranium_c, cranium_r),
        (FACE, jaw_c, jaw_r),
        (NOSE, nose_c, nose_r),
        (EARS, np.array([-ear_x, EAR_Y, EAR_Z]), ear_r),
        (EARS, np.array([ear_x, EAR_Y, EAR_Z]), ear_r),
    ]
    for kind, centre, radii in solids:
        idx = _candidates(centre, radii.max(), rot, size, framing)
        hit, near, _ = _ellipsoid(origin, local[:, idx], centre, radii)
        composite(kind, idx[hit], near)
    shells = [(HAIR_CENTRE, hair_r, lambda q: _hair_covers(q, style))]
    if style.hangs:
        shells.append((HANG_CENTRE, hang_r, _hangs))
    for centre, radii, covers in shells:
        idx = _candidates(np.asarray(centre), radii.max(), rot, size, framing)
        hit, t, seen_inside = _shell_hits(origin, local[:, idx], centre, radii, covers)
        composite(HAIR, idx[hit], t, seen_inside)

    rgb = _backdrop(scene, size).copy()  # (N, 3)
    light = rot.T @ np.asarray(scene.light_direction)  # head-local
    lamp = scene.light_intensity * np.asarray(scene.light_tint)  # (3,) the light's colour
    pixel = 2.0 * FRAME_HALF_HEIGHT / size
    for kind in (FACE, NOSE, EARS, HAIR, NECK, TORSO):
        idx = np.flatnonzero(surface == kind)
        if len(idx) == 0:
            continue
        if kind in (NECK, TORSO):  # static in world coordinates: shading precomputed per frame size
            colour = np.asarray(identity.skin) * NECK_SHADE if kind == NECK else np.asarray(scene.shirt_color)
            rgb[idx] = colour * body_shade[idx, None] * lamp
            continue
        p = (origin[:, None] + depth[idx] * local[:, idx]).T  # (M, 3) head-local hit points
        if kind == FACE:
            normal = _union_normal(p, (cranium_c, cranium_r), (jaw_c, jaw_r))
            albedo = _face_texture(identity, pose, p, pixel, smile)
        elif kind == NOSE:
            normal = (p - nose_c) / nose_r**2
            albedo = np.broadcast_to(identity.skin, p.shape) * (1.0 - _nostrils(p, nose_c, nose_r))[:, None]
        elif kind == EARS:
            centre = np.stack([np.sign(p[:, 0]) * ear_x, np.full(len(p), EAR_Y), np.full(len(p), EAR_Z)], axis=1)
            normal, albedo = (p - centre) / ear_r**2, np.broadcast_to(identity.skin, p.shape) * EAR_SHADE
        else:
            normal = (p - HAIR_CENTRE) / hair_r**2  # the hanging hair shades like the shell it continues
            albedo = _hair_texture(identity, p) * np.where(inside[idx], HAIR_INSIDE_SHADE, 1.0)[:, None]
        normal = normal / np.linalg.norm(normal, axis=1, keepdims=True)
        rgb[idx] = albedo * (AMBIENT + DIFFUSE * np.clip(normal @ light, 0.0, None))[:, None] * lamp
        if kind != HAIR:
            view = -local[:, idx].T / np.linalg.norm(local[:, idx], axis=0)[:, None]
            half = view + light
            half /= np.linalg.norm(half, axis=1, keepdims=True)
            rgb[idx] += SPECULAR * np.clip((normal * half).sum(1), 0.0, None)[:, None] ** SHININESS * lamp
    return (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8).reshape(size, size, 3)  # rounded to nearest


@lru_cache(maxsize=8)
def _body(size: int, framing: Framing, light: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neck and shoulders, which do not move: per ray the depth, the surface (NECK, TORSO or BACKGROUND) and the
    Lambert shading under a white light of unit intensity, each `(size * size,)`."""
    rays = _camera_rays(size, framing)
    neck = _neck(CAMERA, rays)
    hit, torso_near, _ = _ellipsoid(CAMERA, rays, TORSO_CENTRE, TORSO_RADII)
    torso = np.full(size * size, np.inf)
    torso[hit] = torso_near
    depth = np.minimum(neck, torso)
    surface = np.where(neck < torso, NECK, np.where(np.isfinite(torso), TORSO, BACKGROUND)).astype(np.int8)
    p = CAMERA[:, None] + np.where(np.isfinite(depth), depth, 0.0) * rays  # (3, N); rays missing both: any point
    normal = np.where(
        surface == NECK,
        p * [[1.0], [0.0], [1.0]] - [[0.0], [0.0], [NECK_Z]],
        (p - TORSO_CENTRE[:, None]) / TORSO_RADII[:, None] ** 2,
    )
    shade = AMBIENT + DIFFUSE * np.clip(np.asarray(light) @ (normal / np.linalg.norm(normal, axis=0)), 0.0, None)
    for array in (depth, surface, shade):
        array.setflags(write=False)
    return depth, surface, shade


def _union_normal(p: np.ndarray, *ellipsoids: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Normals `(M, 3)` of a smooth union of ellipsoids `(centre, radii)`: gradients blended by implicit value."""
    implicit = np.stack([(((p - c) / r) ** 2).sum(1) for c, r in ellipsoids])  # (K, M); 1 on each surface
    weights = np.exp(-(implicit - implicit.min(0)) / SMOOTH_UNION)  # the surface the point lies on dominates
    grads = np.stack([(p - c) / r**2 for c, r in ellipsoids])  # (K, M, 3)
    grads /= np.linalg.norm(grads, axis=2, keepdims=True)
    return (weights[:, :, None] * grads).sum(0)


def _nostrils(p: np.ndarray, centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Darkening in [0, NOSTRIL_DARKNESS] of the two nostrils under the nose ellipsoid at points `p` `(M, 3)`."""
    q = (p - centre) / radii  # unit-sphere coordinates on the nose
    spot = np.hypot(np.abs(q[:, 0]) - NOSTRIL_AT[0], q[:, 1] - NOSTRIL_AT[1]) / NOSTRIL_RADIUS
    return NOSTRIL_DARKNESS * np.clip(1.0 - spot, 0.0, 1.0)


def _hangs(points: np.ndarray) -> np.ndarray:
    """Whether long hanging hair covers head-local points `(3, M)`: behind the face and neck, above the chest."""
    return (points[2] < points[1] * HANG_SLANT + HANG_FRONT) & (points[1] > HANG_BOTTOM)


@lru_cache(maxsize=8)
def _backdrop(scene: Scene, size: int) -> np.ndarray:
    """The scene's static backdrop, `(size * size, 3)` in raster order, made once per scene and frame size."""
    backdrop = scene.backdrop(size)
    backdrop.setflags(write=False)
    return backdrop
