"""DAE-GAN as one object: the four networks composed, loaded from and saved to checkpoints, and the inference API
(embed faces, encode poses, reconstruct, reenact) that the index, the UI and `daegan reenact` call (paper sec. 3).

Equations applied, with F the face embedder, P = (encoder E, decoder D_P) the pose embedder, G the generator:
- embedded face  f = F(x_1..x_K) = sum_k A'_k * T_k(x_k)                    (eq. 1)
- pose code      p = E(x)                                                   (Fig. 4)
- reconstruction x = D_P(p, f) = R^H + U{R^L + U[T^-1(f)]}                  (eq. 2)
- reenactment    x = G(f_source, p_driving)  once G is trained               (sec. 3.2; at test time F and P may
                 see different identities, Fig. 2), else D_P(p_driving, f_source), eq. 2 across identities.

Choices:
- Which renderer reenacts. A checkpoint's metadata ``stage`` says how far training went: ``"2"`` or
  ``"adversarial"`` (`GENERATOR_STAGES`) means G was trained and reenacts; anything else (``"1"``, absent) is a
  stage-1 checkpoint whose G is still random, so P's decoder reenacts (eq. 2 with the source's f). The flag is the
  constructor's `generator_trained`; `from_checkpoint` reads it from the metadata unless told, `save` writes it.
  A checkpoint may also name its ``renderer`` outright: whoever evaluated it found that renderer better (the
  shipped small checkpoint names the decoder: its G, after a short stage 2, loses to P's decoder across identities).
- Reenactment keeps the source's background: each rendering is pasted over the first source frame through a head
  mask (`model.composite`), so outside the head the output shows the source's own pixels; `keep_background=False`
  returns the renderer's whole frame (what training compares and what the decoder draws).
- Reenactment by the decoder draws from the source frames' own pixels (`draw`, `model.sharp_render`): F's and P's
  warps composed into one field sample the source frames once, at the size asked for (their own crops' detail),
  instead of enlarging an S-pixel rendering of an S-pixel embedded face. G draws at S, enlarged to that size.
- Loading is strict: F and P must be in the checkpoint and every state dict must fit the config exactly. G is
  required when the checkpoint says it is trained; a stage-1 checkpoint without G gets a freshly built one (never
  used to reenact). D, and the domain critic of a run with `loss.domain_weight` (`model.domain_critic`), are
  loaded only on request (`with_discriminator`): inference needs neither. Networks the checkpoint holds beyond
  these are ignored.
- Pose codes for search are L2-normalised (cosine = inner product, as the index stores them); the renderers take
  the raw code, which is what P's decoder and G were trained on.
- Inputs are RGB uint8 images (any size: centre-cropped to a square and resized as the training set does,
  `data.dataset.to_square`) or float tensors `(..., 3, S, S)` in [-1, 1] on any device. Work runs in chunks of
  `batch_size` frames on `self.device` in eval mode under `torch.inference_mode`; results come back as float32
  CPU tensors. Rendered images are clamped to [-1, 1] (the decoder's residuals are unbounded).
- No `forward`: the trainer (`model.train`) builds a DAEGAN and calls its networks, or their DistributedDataParallel
  wrappers, phase by phase (`model.train_phases`); inference calls the methods below. `generate` is where both
  decide what G is given: P's rendering as its draft exactly when G refines the decoder
  (`model.gen_refines_decoder`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, NamedTuple, Union

import numpy as np
import torch
from torch import nn

from model.checkpoint import load_checkpoint, save_checkpoint
from model.composite import paste_over_source
from model.config import Config
from model.data.dataset import to_square, to_tensor
from model.data.errors import DataError
from model.data.synthvox_motion import POSE_COLUMNS
from model.discriminator import Discriminator
from model.domain_critic import DomainCritic
from model.face_embedder import FaceEmbedder, FaceEmbedding
from model.generator import Generator
from model.pose_embedder import PoseEmbedder
from model.sharp_render import render_from_sources
from model.warp import flow_to_colour, resize

STAGE_KEY = "stage"  # checkpoint metadata key the trainer sets: how far training went
GENERATOR_STAGES = frozenset({"2", "adversarial"})  # values of STAGE_KEY meaning G was trained (stage 2 of sec. 3.3)
RENDERER_KEY = "renderer"  # checkpoint metadata key naming the renderer an evaluation found better (optional)
REQUIRED_NETWORKS = ("face_embedder", "pose_embedder")  # what every checkpoint must hold
BATCH_SIZE = 64  # frames per forward pass at inference: no gradients, so larger than training's batch

Renderer = Literal["generator", "decoder"]
Motion = Literal["absolute", "relative"]  # how a driving code becomes the code drawn (`relative_pose`)
Images = Union[np.ndarray, torch.Tensor, Sequence[np.ndarray]]  # see `DAEGAN.to_frames`


class Reconstruction(NamedTuple):
    """Target frames rebuilt from one person's embedded face by P's decoder (eq. 2; the pictures of Fig. 7)."""

    face: torch.Tensor  # (3, S, S) in [-1, 1]: the embedded face f of the source frames
    face_flow: torch.Tensor  # (K, 2, S, S): F's displacement field T_k per source frame, normalised units
    face_flow_colour: torch.Tensor  # (K, 3, S, S) in [-1, 1]: those fields as pictures (`warp.flow_to_colour`)
    reconstruction: torch.Tensor  # (N, 3, S, S) in [-1, 1]: x of eq. 2 per target frame, clamped
    pose_code: torch.Tensor  # (N, pose_dim): raw pose code p of each target frame
    flow: torch.Tensor  # (N, 2, S/4, S/4) (single-scale: (N, 2, S, S)): T^-1 per target frame
    flow_colour: torch.Tensor  # (N, 3, S/4, S/4) (single-scale: S) in [-1, 1]: T^-1 as pictures
    warped: torch.Tensor  # T^-1(f) at the flow's resolution, before the residuals


class Reenactment(NamedTuple):
    """The source face in each driving frame's pose."""

    image: torch.Tensor  # (N, 3, H, H) in [-1, 1]: one rendered frame per driving frame, H the size asked for
    face: torch.Tensor  # (3, S, S) in [-1, 1]: the source's embedded face f
    pose_code: torch.Tensor  # (N, pose_dim): raw pose code of each driving frame
    renderer: Renderer  # "generator": G(f, p); "decoder": P's decoder, eq. 2 (stage-1 checkpoints)


def relative_pose(pose_code: torch.Tensor, driving_mean: torch.Tensor, source_mean: torch.Tensor) -> torch.Tensor:
    """Relative motion: each raw driving code's departure from its video's mean code `driving_mean`, added to the
    source frames' mean code `source_mean`: (N, D) - (D,) + (D,). FOMM's relative animation (Siarohin et al. 2019,
    keypoints moved by the driver's displacement from its first frame), in code space and from the mean rather than
    one frame. Why: an absolute code also carries the driver's face shape, which P's warp imposes on the source (a
    real face squashed to a cartoon's round proportions is the face dlib then misses); the driver's own mean holds
    that shape, and the difference keeps the motion."""
    return pose_code - driving_mean + source_mean


def to_images(img: torch.Tensor) -> np.ndarray:
    """Float images `(3, H, W)` or `(N, 3, H, W)` in [-1, 1] (any device) to RGB uint8 `(H, W, 3)` or
    `(N, H, W, 3)`; values outside [-1, 1] are clipped."""
    if img.dim() not in (3, 4) or img.shape[-3] != 3:
        raise ValueError(f"images must be (3, H, W) or (N, 3, H, W), got {tuple(img.shape)}")
    pixels = ((img.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.movedim(-3, -1).numpy()  # channels last


def images_to_frames(images: Images, size: int) -> torch.Tensor:
    """Model input `(N, 3, size, size)` in [-1, 1] from images (the forms `DAEGAN.to_frames` accepts).

    uint8 images come back as float32 CPU tensors; float tensors are returned as they are (device kept).
    """
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        frames = images.unsqueeze(0) if images.dim() == 3 else images
        if frames.dim() != 4 or frames.shape[1:] != (3, size, size):
            raise ValueError(
                f"float frames must be (3, {size}, {size}) or (N, 3, {size}, {size}), got {tuple(images.shape)}"
            )
        return frames
    if isinstance(images, torch.Tensor):
        images = images.cpu().numpy()
    if isinstance(images, np.ndarray):
        images = [images] if images.ndim == 3 else list(images)
    if len(images) == 0:
        raise ValueError("no images given")
    for img in images:
        if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3):
            kind = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
            raise ValueError(f"images must be RGB uint8 (H, W, 3) arrays, got {kind}")
    return torch.stack([to_tensor(to_square(img, size)) for img in images])  # (N, 3, S, S)


class DAEGAN(nn.Module):
    """The face embedder F, pose embedder P, generator G and (optionally) discriminator D of one model."""

    def __init__(
        self,
        face_embedder: FaceEmbedder,  # F: K frames -> embedded face (eq. 1)
        pose_embedder: PoseEmbedder,  # P: frame -> pose code -> warp + residuals (eq. 2)
        generator: Generator,  # G: (embedded face, pose code) -> frame (sec. 3.2)
        discriminator: Discriminator | None = None,  # D: only training needs it
        domain_critic: DomainCritic | None = None,  # P's adversary under loss.domain_weight: only training needs it
        *,
        config: Config,  # the config the networks were built from (sizes, saved with the weights)
        generator_trained: bool = False,  # G has been through stage 2: reenact with G, not P's decoder
        metadata: Mapping[str, str] | None = None,  # the checkpoint's metadata, kept for provenance
        batch_size: int = BATCH_SIZE,  # frames per forward pass in the inference methods
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.face_embedder = face_embedder
        self.pose_embedder = pose_embedder
        self.generator = generator
        self.discriminator = discriminator
        self.domain_critic = domain_critic
        self.config = config
        self.generator_trained = generator_trained
        self.metadata = dict(metadata or {})
        self.batch_size = batch_size

    # --- building, loading, saving ---------------------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        with_discriminator: bool = True,
        generator_trained: bool = False,
        batch_size: int = BATCH_SIZE,
    ) -> DAEGAN:
        """Freshly initialised networks for `config` (what training starts from)."""
        size = config.data.size
        return cls(
            FaceEmbedder.from_config(config.model, size=size),
            PoseEmbedder.from_config(config.model, size=size),
            Generator.from_config(config.model, size=size),
            Discriminator.from_config(config.model, size=size) if with_discriminator else None,
            DomainCritic(len(POSE_COLUMNS), config.model.critic_hidden_dim)
            if with_discriminator and config.loss.domain_weight > 0
            else None,
            config=config,
            generator_trained=generator_trained,
            batch_size=batch_size,
        )

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: torch.device = torch.device("cpu"),
        *,
        with_discriminator: bool = False,
        generator_trained: bool | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> DAEGAN:
        """Load a checkpoint written by `save` or the trainer, rebuilt from its own config, in eval mode on `device`.

        `generator_trained=None` reads the checkpoint's ``stage`` (module docstring). A `DataError` names the file
        when it is not a posedex checkpoint, lacks a network it needs, or holds weights that do not fit its config.
        """
        path = Path(path)
        checkpoint = load_checkpoint(path, torch.device("cpu"))
        stage = checkpoint.metadata.get(STAGE_KEY, "").strip().lower()
        if generator_trained is None:
            generator_trained = stage in GENERATOR_STAGES
        required = [
            *REQUIRED_NETWORKS,
            *(["generator"] if generator_trained else []),
            *(["discriminator"] if with_discriminator else []),
        ]
        missing = [name for name in required if name not in checkpoint.states]
        if missing:
            held = ", ".join(sorted(checkpoint.states)) or "none"
            raise DataError(path, f"checkpoint holds no weights for {', '.join(missing)} (it holds: {held})")
        named = checkpoint.metadata.get(RENDERER_KEY)
        if named is not None and (
            named not in ("generator", "decoder") or (named == "generator" and not generator_trained)
        ):
            raise DataError(path, f"checkpoint names renderer {named!r}, which it cannot use")
        model = cls.from_config(
            checkpoint.config,
            with_discriminator=with_discriminator,
            generator_trained=generator_trained,
            batch_size=batch_size,
        )
        model.metadata = dict(checkpoint.metadata)
        for name, net in model.networks().items():
            if name not in checkpoint.states:
                continue  # an untrained G of a stage-1 checkpoint saved without one
            try:
                net.load_state_dict(checkpoint.states[name], strict=True)
            except RuntimeError as err:
                first = str(err).strip().splitlines()
                detail = " ".join(line.strip() for line in first[:2])[:300]
                raise DataError(path, f"weights of {name} do not fit the checkpoint's config ({detail})") from err
        return model.to(device).eval()

    def networks(self) -> dict[str, nn.Module]:
        """The networks by their checkpoint names: face_embedder, pose_embedder, generator[, discriminator][,
        domain_critic]."""
        nets: dict[str, nn.Module] = {
            "face_embedder": self.face_embedder,
            "pose_embedder": self.pose_embedder,
            "generator": self.generator,
        }
        if self.discriminator is not None:
            nets["discriminator"] = self.discriminator
        if self.domain_critic is not None:
            nets["domain_critic"] = self.domain_critic
        return nets

    def save(self, path: str | Path, metadata: Mapping[str, str] | None = None) -> None:
        """Write every network and the config to one safetensors checkpoint, atomically.

        The metadata records ``stage`` ("2" when G is trained, else "1") so `from_checkpoint` picks the same
        renderer; `metadata` adds entries (a conflicting ``stage`` is a ValueError).
        """
        stage = "2" if self.generator_trained else "1"
        extra = dict(metadata or {})
        given = extra.get(STAGE_KEY)
        if given is not None and (given.strip().lower() in GENERATOR_STAGES) != self.generator_trained:
            raise ValueError(f"metadata stage {given!r} contradicts generator_trained={self.generator_trained}")
        save_checkpoint(path, self.networks(), self.config, {STAGE_KEY: stage, **extra})

    # --- conversions -----------------------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Side S in pixels of the square frames the networks work on."""
        return self.config.data.size

    @property
    def pose_dim(self) -> int:
        """Length of a pose code."""
        return self.config.model.pose_dim

    @property
    def device(self) -> torch.device:
        """Where the networks' weights are."""
        return next(self.face_embedder.parameters()).device

    def to_frames(self, images: Images) -> torch.Tensor:
        """Model input `(N, 3, S, S)` in [-1, 1] from any of:

        - an RGB uint8 image `(H, W, 3)`, a stack `(N, H, W, 3)` or a list of images of any sizes (numpy, or a
          uint8 torch tensor): each is centre-cropped to a square and resized to S (face crops from
          `data.face_crop.crop_face` already are S x S and pass unchanged);
        - float tensors `(3, S, S)` or `(N, 3, S, S)` in [-1, 1], on any device, returned as they are.
        """
        return images_to_frames(images, self.size)

    to_images = staticmethod(to_images)

    # --- inference -------------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def embed_face(self, frames: Images | torch.Tensor) -> FaceEmbedding:
        """The embedded face of K frames of one person (eq. 1), or of B such sets at once.

        One person: K images or `(K, 3, S, S)` -> `FaceEmbedding(face (3, S, S), flow (K, 2, S, S),
        attention (K, 1, S, S), warped (K, 3, S, S))`. Batched: `(B, K, 3, S, S)` floats or `(B, K, H, W, 3)`
        uint8 -> the same fields with a leading B. Fields are as `face_embedder.FaceEmbedding` documents them.
        """
        batched = isinstance(frames, (np.ndarray, torch.Tensor)) and frames.ndim == 5
        if batched:
            b, k = frames.shape[:2]
            flat = frames.reshape(b * k, *frames.shape[2:])  # (B*K, ...): every frame on its own
            sets = self.to_frames(flat).reshape(b, k, 3, self.size, self.size)  # (B, K, 3, S, S)
        else:
            sets = self.to_frames(frames).unsqueeze(0)  # (1, K, 3, S, S)
        per_chunk = max(1, self.batch_size // sets.shape[1])  # bound the frames per pass, not the sets
        with self._evaluating():
            parts = [self.face_embedder(self._on_device(sets[chunk])) for chunk in _chunks(len(sets), per_chunk)]
        result = FaceEmbedding(*(torch.cat([_cpu(getattr(p, f)) for p in parts]) for f in FaceEmbedding._fields))
        return result if batched else FaceEmbedding(*(t[0] for t in result))

    @torch.inference_mode()
    def encode_pose(self, frames: Images | torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
        """Pose codes of N frames: `(N, pose_dim)` float32 on the CPU.

        `normalize=True` (for search) makes every row unit length, so cosine similarity is the inner product;
        `normalize=False` gives P's raw code p, the one the renderers take.
        """
        x = self.to_frames(frames)  # (N, 3, S, S)
        with self._evaluating():
            codes = torch.cat(
                [
                    _cpu(self.pose_embedder.encode(self._on_device(x[chunk])))
                    for chunk in _chunks(len(x), self.batch_size)
                ]
            )  # (N, pose_dim)
        return nn.functional.normalize(codes, dim=1) if normalize else codes

    @torch.inference_mode()
    def render(
        self,
        face: torch.Tensor,
        pose_code: torch.Tensor,
        *,
        renderer: Renderer | None = None,
    ) -> torch.Tensor:
        """Draw the embedded face `face` (3, S, S) (or one per code, (N, 3, S, S)) in each raw pose code
        `pose_code` (N, pose_dim): `(N, 3, S, S)` in [-1, 1] on the CPU.

        `renderer` None picks G when it is trained, else P's decoder (module docstring). The renderer's whole frame,
        at S, drawn from the embedded face: `draw` is what reenactment uses (the source's own pixels, any size, pasted).
        """
        renderer = renderer or self.default_renderer
        if renderer not in ("generator", "decoder"):
            raise ValueError(f"renderer must be 'generator' or 'decoder', got {renderer!r}")
        n = len(pose_code)
        if pose_code.shape != (n, self.pose_dim):
            raise ValueError(f"pose_code must be (N, {self.pose_dim}), got {tuple(pose_code.shape)}")
        faces = face.expand(n, -1, -1, -1) if face.dim() == 3 else face  # (N, 3, S, S): a view, no copy
        if faces.shape != (n, 3, self.size, self.size):
            raise ValueError(f"face must be (3, {self.size}, {self.size}) or (N, 3, ...), got {tuple(face.shape)}")
        images = []
        with self._evaluating():
            for chunk in _chunks(n, self.batch_size):
                f, p = self._on_device(faces[chunk]), self._on_device(pose_code[chunk])
                # G (sec. 3.2), or P's decoder alone: R^H + U{R^L + U[T^-1(f)]} (eq. 2)
                out = self.generate(f, p) if renderer == "generator" else self.pose_embedder.decode(p, f).reconstruction
                images.append(_cpu(out).clamp(-1, 1))
        return torch.cat(images)

    def generate(
        self,
        face: torch.Tensor,
        pose_code: torch.Tensor,
        reconstruction: torch.Tensor | None = None,
        *,
        generator: nn.Module | None = None,
    ) -> torch.Tensor:
        """G's image of the embedded face `face` (B, 3, S, S) in the raw pose code `pose_code` (B, pose_dim) (sec. 3.2):
        (B, 3, S, S), unclamped, with gradients (training calls it; `render` is the inference method).

        A G that refines the decoder (`model.gen_refines_decoder`) takes P's rendering of `face` in `pose_code` as
        its draft: `reconstruction` (B, 3, S, S) when the caller has it already (training: eq. 2's x), else
        decoded here. `generator` is the module to run G through (its DistributedDataParallel wrapper while G
        trains); None runs `self.generator`.
        """
        if not self.generator.refines_decoder:
            draft = None  # G(f, p)
        elif reconstruction is not None:
            draft = reconstruction  # G(f, p, x): a residual on top of P's x
        else:
            draft = self.pose_embedder.decode(pose_code, face).reconstruction  # x = D_P(p, f), eq. 2
        return (self.generator if generator is None else generator)(face, pose_code, draft)

    @property
    def default_renderer(self) -> Renderer:
        """The renderer `reenact` uses unless told: the checkpoint's named ``renderer``, else G once trained, else
        P's decoder."""
        named = self.metadata.get(RENDERER_KEY)
        if named == "decoder" or (named == "generator" and self.generator_trained):
            return named
        return "generator" if self.generator_trained else "decoder"

    def reenact(
        self,
        source_frames: Images | torch.Tensor,
        driving_frames: Images | torch.Tensor,
        *,
        renderer: Renderer | None = None,
        keep_background: bool = True,
        size: int | None = None,
        motion: Motion = "absolute",
        driving_mean: torch.Tensor | None = None,
    ) -> Reenactment:
        """The face of the K source frames (one person) in the pose of each of the N driving frames (anyone).

        Returns images `(N, 3, size, size)` (`size` None: the model's S) drawn as `draw` draws;
        `Reenactment.renderer` says whether G or P's decoder drew them. `keep_background`: each image is pasted over
        the first source frame, which shows outside the head (`model.composite`); False: the renderer's whole frame.
        `motion` "relative" draws `relative_pose` codes: the driving frames' motion about `driving_mean` (the mean raw
        code of their whole video; None: of these frames) on the source frames' own mean code.
        """
        pose_code = self.encode_pose(driving_frames, normalize=False)  # (N, pose_dim)
        if motion == "relative":
            source_mean = self.encode_pose(source_frames, normalize=False).mean(dim=0)
            reference = pose_code.mean(dim=0) if driving_mean is None else driving_mean
            pose_code = relative_pose(pose_code, reference, source_mean)
        elif motion != "absolute":
            raise ValueError(f"motion must be 'absolute' or 'relative', got {motion!r}")
        renderer = renderer or self.default_renderer
        embedding = self.embed_face(self.to_frames(source_frames))
        image = self.draw(
            source_frames, pose_code, renderer=renderer, keep_background=keep_background, size=size, embedding=embedding
        )
        return Reenactment(image, embedding.face, pose_code, renderer)

    @torch.inference_mode()
    def draw(
        self,
        source_frames: Images | torch.Tensor,
        pose_code: torch.Tensor,
        *,
        renderer: Renderer | None = None,
        keep_background: bool = True,
        size: int | None = None,
        embedding: FaceEmbedding | None = None,
    ) -> torch.Tensor:
        """The person of the K source frames in each raw pose code `pose_code` (N, pose_dim): `(N, 3, size, size)`
        in [-1, 1] on the CPU (`size` None: S).

        P's decoder draws from the source frames' own pixels (`model.sharp_render`): uint8 images are cropped as
        `to_frames` crops them but to `size`, so a photo larger than S gives its own detail; float frames at S are
        enlarged. A decoder without the full-resolution warp, and G, draw at S (`render`), enlarged. `embedding`:
        F's embedding of these frames when the caller has it (a video renders one embedding in many batches).
        `keep_background` as `reenact`.
        """
        size = size or self.size
        renderer = renderer or self.default_renderer
        if renderer not in ("generator", "decoder"):
            raise ValueError(f"renderer must be 'generator' or 'decoder', got {renderer!r}")
        if pose_code.dim() != 2 or pose_code.shape[1] != self.pose_dim:
            raise ValueError(f"pose_code must be (N, {self.pose_dim}), got {tuple(pose_code.shape)}")
        sources = self.to_frames(source_frames)  # (K, 3, S, S): what F sees
        embedding = embedding if embedding is not None else self.embed_face(sources)
        if isinstance(source_frames, torch.Tensor) and source_frames.is_floating_point():
            pixels = sources if size == self.size else resize(sources, size)  # at S: nothing finer to draw from
        else:
            pixels = images_to_frames(source_frames, size)  # (K, 3, size, size): the photos' own detail
        pixels = pixels.cpu().float()
        pose_embedder = self.pose_embedder
        composes = renderer == "decoder" and pose_embedder.multi_scale and pose_embedder.warp_full_resolution
        if composes:
            images = []
            with self._evaluating():
                face = self._on_device(embedding.face).unsqueeze(0)  # (1, 3, S, S)
                fields = FaceEmbedding(*(self._on_device(t) for t in embedding))
                for chunk in _chunks(len(pose_code), self.batch_size):
                    codes = self._on_device(pose_code[chunk])
                    rec = pose_embedder.decode(codes, face.expand(len(codes), -1, -1, -1))
                    images.append(_cpu(render_from_sources(self._on_device(pixels), fields, rec)).clamp(-1, 1))
            rendered = torch.cat(images)
        else:
            rendered = self.render(embedding.face, pose_code, renderer=renderer)
            rendered = rendered if size == self.size else resize(rendered, size).clamp(-1, 1)
        if not keep_background:
            return rendered
        return paste_over_source(rendered, pixels[:1].expand(len(rendered), -1, -1, -1)).image

    @torch.inference_mode()
    def reconstruct(self, source_frames: Images | torch.Tensor, target_frames: Images | torch.Tensor) -> Reconstruction:
        """Rebuild each of N target frames from the embedded face of K source frames with P's decoder (eq. 2),
        with the warps that did it as pictures: the paper's Fig. 7. Same person: stage 1's reconstruction;
        different people: reenactment by warping."""
        embedding = self.embed_face(source_frames)
        x = self.to_frames(target_frames)  # (N, 3, S, S)
        parts = []
        with self._evaluating():
            face = self._on_device(embedding.face).unsqueeze(0)  # (1, 3, S, S)
            for chunk in _chunks(len(x), self.batch_size):
                target = self._on_device(x[chunk])
                parts.append(self.pose_embedder(target, face.expand(len(target), -1, -1, -1)))
        rec = [
            torch.cat([_cpu(getattr(p, name)) for p in parts])
            for name in ("reconstruction", "pose_code", "flow", "warped")
        ]
        return Reconstruction(
            face=embedding.face,
            face_flow=embedding.flow,
            face_flow_colour=flow_to_colour(embedding.flow),
            reconstruction=rec[0].clamp(-1, 1),
            pose_code=rec[1],
            flow=rec[2],
            flow_colour=flow_to_colour(rec[2]),
            warped=rec[3],
        )

    # --- helpers ---------------------------------------------------------------------------------------------------

    def _on_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.device, torch.float32, non_blocking=True)

    @contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Run the networks in eval mode and restore each one's mode afterwards (training may call inference)."""
        # eval() walks every submodule, a cost per call at batch 1: switch only the networks in training mode
        training = [net for net in self.networks().values() if net.training]
        try:
            for net in training:
                net.eval()
            yield
        finally:
            for net in training:
                net.train()


def _chunks(n: int, size: int) -> Iterator[slice]:
    """Slices covering range(n) in pieces of at most `size`."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _cpu(x: torch.Tensor) -> torch.Tensor:
    return x.detach().float().cpu()
