"""Typed configuration: frozen dataclasses are the truth; YAML presets in ``configs/`` fill them.

The presets ship as package data (`model.resources`), so a name such as ``tiny`` resolves from any folder.

Presets are read with ``yaml.safe_load``; an unknown key is an error naming the file and the key; overrides from
the command line replace single fields (``data.size=64``); the resolved config is written into a run directory so
a run can be repeated exactly. Each field cites the paper where the paper sets it and says why where it is silent.
Sections: ``data`` (what the networks are fed), ``model`` (network sizes and the Table 1 ablation switches),
``loss`` (the weights of eqs. 5 and 6), ``augment`` (what P's encoder sees), ``train`` (the two-stage schedule and
optimisers of sec. 3.3 and sec. 4).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from model.data.errors import DataError
from model.data.synthvox_motion import POSE_COLUMNS
from model.resources import preset_file, preset_names


@dataclass(frozen=True)
class DataConfig:
    """What the networks are fed."""

    size: int = 256  # frame side in pixels; paper sec. 4 "Datasets": 256x256 face crops
    num_frames: int = 8  # K frames fused into the embedded face (eq. 1); paper silent: 8 keeps a 1-fps video's variety
    fps: float = 1.0  # sampling rate of video layouts; paper sec. 4: frames extracted at 1 fps
    test_fraction: float = 0.1  # identities held out where no official split exists; paper uses VoxCeleb1's split
    batch_size: int = 16  # paper silent (2 GPUs); 16 fits one 24 GB card at 256 px
    workers: int = 4  # DataLoader worker processes decoding frames
    seed: int = 0  # source-frame draws and the seeded split
    # identities (shell-style patterns) never trained on, whatever the split draws: whole people kept for evaluation
    hold_out: tuple[str, ...] = ()
    # least share of an epoch's targets that are real (unlabelled) frames; paper silent (VoxCeleb is all real). Where
    # synthetic frames outnumber them, real frames repeat within the epoch (model.data.dataset); 0: no repeats
    real_share: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "hold_out", tuple(str(p) for p in self.hold_out))  # YAML gives a list
        if self.size < 8 or self.size % 4:
            raise ValueError(
                f"data.size must be a multiple of 4 and >= 8 (the pose warp is at size/4), got {self.size}"
            )
        if self.num_frames < 1:
            raise ValueError(f"data.num_frames must be >= 1, got {self.num_frames}")
        if not 0 <= self.real_share < 1:
            raise ValueError(f"data.real_share must be in [0, 1), got {self.real_share}")
        if self.batch_size < 1 or self.workers < 0 or self.fps < 0:
            raise ValueError("data.batch_size must be >= 1, data.workers >= 0 and data.fps >= 0")


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the four networks and the architectural ablation switches (paper sec. 3, Table 1).

    The paper gives no layer counts or widths; defaults are the `paper` preset's. The single-frame ablation of the
    face embedder is ``data.num_frames: 1`` (the embedder is the same network for any K).
    """

    align_corners: bool = False  # grid_sample/interpolate corners; the code uses warp.ALIGN_CORNERS, recorded here
    max_hidden_dim: int = 512  # cap on every network's channel width; paper silent, Pix2PixHD's cap
    # face embedder F (eq. 1)
    face_hidden_dim: int = 32  # first-level width of F's U-Net, doubled per level; paper silent
    num_face_levels: int = 5  # U-Net downsamplings; paper silent: 256 -> 8 px, wide enough to see a head turn
    # pose embedder P (eq. 2)
    pose_dim: int = 128  # length of the pose code p (what gets indexed); paper silent: room for pose + expression
    pose_hidden_dim: int = 32  # first-level width of P's encoder, doubled per level; paper silent
    num_pose_levels: int = 6  # encoder downsamplings to the flattened bottleneck; 256 -> 4 px; paper silent
    multi_scale: bool = True  # eq. 2: warp at W/4 plus residuals at W/2, W; False = Table 1's single-scale row
    # True: P's W/4 flow, upsampled, warps the full-resolution face (FOMM, X2Face) instead of a 4x-downsampled one,
    # so the warp, not the residuals, can carry the face (model.pose_embedder); False: eq. 2 as written
    warp_full_resolution: bool = False
    # generator G (sec. 3.2, Pix2PixHD global generator)
    gen_hidden_dim: int = 64  # stem width, doubled per downsampling; Pix2PixHD's ngf
    num_gen_down: int = 4  # front-end (and back-end) resolution steps; Pix2PixHD's global generator
    num_gen_blocks: int = 9  # residual blocks in the middle G_m; Pix2PixHD's global generator
    adain_hidden_dim: int = 256  # width of each AdaIN MLP's shared linear layer; paper silent
    # True: G sees P's rendering of f in pose p (eq. 2) beside f and adds a residual to it, starting as P's decoder;
    # False: G(f, p) from f alone, as the paper. At CPU scale G alone never caught up with f (model.generator).
    gen_refines_decoder: bool = False
    # discriminator D (sec. 3.2)
    disc_hidden_dim: int = 64  # first-layer width of the patch discriminator; Pix2PixHD's ndf
    num_disc_layers: int = 4  # stride-2 layers; 256 -> 16x16 patches of logits; paper silent
    disc_conditional: bool = False  # True: D also sees the embedded face, channel-concatenated; the paper's is not
    # the domain critic (loss.domain_weight; model.domain_critic): width of its two hidden layers; not the paper's
    critic_hidden_dim: int = 64

    def __post_init__(self) -> None:
        from model.warp import ALIGN_CORNERS  # the one constant the code uses; the config records it

        if self.align_corners != ALIGN_CORNERS:
            raise ValueError(
                f"model.align_corners must be {ALIGN_CORNERS} (warp.ALIGN_CORNERS), got {self.align_corners}"
            )
        sizes = {
            name: getattr(self, name)
            for name in (
                "max_hidden_dim",
                "face_hidden_dim",
                "num_face_levels",
                "pose_dim",
                "pose_hidden_dim",
                "gen_hidden_dim",
                "num_gen_down",
                "num_gen_blocks",
                "adain_hidden_dim",
                "disc_hidden_dim",
                "num_disc_layers",
                "critic_hidden_dim",
            )
        }
        for name, value in sizes.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"model.{name} must be a positive integer, got {value!r}")
        if self.num_pose_levels < 2:
            raise ValueError(
                f"model.num_pose_levels must be >= 2 (the pose warp is at size/4), got {self.num_pose_levels}"
            )

    def check_size(self, size: int) -> None:
        """Raise ValueError unless every network can work on `size`-pixel frames."""
        for name in ("num_face_levels", "num_pose_levels", "num_gen_down", "num_disc_layers"):
            levels = getattr(self, name)
            if size % 2**levels or size // 2**levels < 2:
                raise ValueError(
                    f"data.size {size} must be divisible by 2**model.{name} = {2**levels} and leave at least 2 pixels"
                )


@dataclass(frozen=True)
class LossConfig:
    """Weights of the training objectives (paper eqs. 5 and 6). A weight of 0 is Table 1's "without" row."""

    smooth_weight: float = 1.0  # lambda_S on the total variation of both warps, eq. 5; paper: 1
    # lambda_S on F's warps alone, where it differs from P's (model.losses); None: smooth_weight, as in eq. 5. F's
    # warp at small's lambda_S 0.1 squeezes eyes and mouths out of shape; one epoch at 1 raised the embedded face's
    # identity probe from 0.585 to 0.873 but cost same-person SSIM 0.786 -> 0.775 (checkpoints/README.md)
    face_smooth_weight: float | None = None
    content_weight: float = 1.0  # lambda_R on the generator's L1 content loss, eq. 6; paper: 1
    feature_matching_weight: float = 1.0  # lambda_FM on the L1 discriminator-feature loss, eq. 6; paper: 1
    # lambda_B on the L1 budget of P's residuals R^L, R^H (model.losses): pose carried by the warp; paper: none (0)
    residual_weight: float = 0.0
    # eq. 3's L1 averaged over this many resolutions (full, 1/2, ...; model.losses): a warp's gradient reaches
    # further at coarse levels; paper: 1 (full resolution only)
    pyramid_levels: int = 1
    # lambda_C on a contrastive term over the pose code (model.losses): each target's code must pick out another
    # view of the same frame among other frames of its video, whose identity and scene it shares, so that only what
    # changes within a video (head pose, face motion) is worth encoding; paper: none (0)
    contrast_weight: float = 0.0
    contrast_temperature: float = 0.1  # tau of that term's softmax over cosine similarities (SimCLR's range)
    # lambda_Y on synthetic supervision (model.losses): where a frame is SynthVox's, p's first coordinates are
    # pulled towards its standardised head pose and expression, so that the code carries what eq. 3 does not
    # reward; paper: none (0, self-supervised only)
    label_weight: float = 0.0
    label_scale: float = 2.0  # those coordinates hold the labels at this many standard deviations
    # lambda_A on domain confusion (model.losses, model.domain_critic): a critic tells real frames from SynthVox's
    # by the coordinates L_Y supervises, and P, through its reversed gradient, learns to leave it unable, so that
    # those coordinates mean the same on a real face; paper: none (0, real video only)
    domain_weight: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "smooth_weight",
            "content_weight",
            "feature_matching_weight",
            "residual_weight",
            "contrast_weight",
            "label_weight",
            "domain_weight",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"loss.{name} must be >= 0, got {getattr(self, name)}")
        if self.face_smooth_weight is not None and self.face_smooth_weight < 0:
            raise ValueError(f"loss.face_smooth_weight must be >= 0 or null, got {self.face_smooth_weight}")
        if self.contrast_temperature <= 0:
            raise ValueError(f"loss.contrast_temperature must be > 0, got {self.contrast_temperature}")
        if self.label_scale <= 0:
            raise ValueError(f"loss.label_scale must be > 0, got {self.label_scale}")
        if not isinstance(self.pyramid_levels, int) or self.pyramid_levels < 1:
            raise ValueError(f"loss.pyramid_levels must be a positive integer, got {self.pyramid_levels!r}")


@dataclass(frozen=True)
class AugmentConfig:
    """Pose-preserving augmentation of what P's *encoder* sees (model.augment); the frame P rebuilds, and F's
    input, stay as they are. Appearance then tells P nothing it can use (Burkov et al. 2020, "Neural Head
    Reenactment with Latent Pose Descriptors"). The paper has none: every default is off."""

    brightness: float = 0.0  # each frame's brightness scaled by a factor in [1 - b, 1 + b]
    contrast: float = 0.0  # contrast about the frame's mean, factor in [1 - c, 1 + c]
    saturation: float = 0.0  # colour saturation, factor in [1 - s, 1 + s]
    hue: float = 0.0  # colour channels rotated about the grey axis by up to hue x 360 degrees
    greyscale: float = 0.0  # probability of a grey frame (real grey photos, such as ORL's, then look like colour)
    blur: float = 0.0  # Gaussian blur sigma drawn in [0, blur] pixels at the frame's size
    scale: float = 0.0  # zoom by a factor in [1 - scale, 1 + scale] about the centre
    shift: float = 0.0  # shift by up to this fraction of the side, each axis

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 0:
                raise ValueError(f"augment.{f.name} must be >= 0, got {getattr(self, f.name)}")
        if self.greyscale > 1 or max(self.brightness, self.contrast, self.saturation, self.scale) >= 1:
            raise ValueError("augment.greyscale must be <= 1; brightness, contrast, saturation and scale < 1")

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self))


PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """The two-stage schedule and the optimisers (paper sec. 3.3 "Training Strategy", sec. 4 "Implementation
    details"). Steps count batches; epochs are passes over the training identities' frames."""

    stage1_epochs: int = 30  # stage 1 optimises F and P only; paper sec. 3.3: "the first 30 epochs"
    stage2_epochs: int = 30  # stage 2 adds G and D; paper silent on its length: as long again
    adversarial: bool = True  # False: stage 1 only, Table 1's rows without adversarial learning
    lr: float = 1e-4  # F, P and G; paper sec. 4: 1e-4
    disc_lr: float = 4e-4  # D; paper sec. 4: 4e-4
    betas: tuple[float, float] = (0.0, 0.9)  # Adam's; paper sec. 4: beta1 = 0, beta2 = 0.9
    # the domain critic's Adam (loss.domain_weight; model.domain_critic), at a constant rate faster than P's, so it
    # keeps up with the code it judges, and DCGAN's beta1 0.5; not the paper's
    critic_lr: float = 1e-3
    critic_betas: tuple[float, float] = (0.5, 0.9)
    embedder_lr_factor_stage2: float = 0.1  # paper sec. 3.3: embedders' lr "decreased by a factor of 10" in stage 2
    # Departure: the first epochs of stage 1 render with P's warp alone (residuals off), so the warp learns to move
    # the face before the residuals can paint it; paper: none (0). Fractional epochs allowed.
    warp_warmup_epochs: float = 0.0
    # Paper sec. 3.3: in stage 2, P is also trained through G on eq. 6. False: P learns from eq. 5 alone, so G's
    # content and adversarial gradients cannot push appearance into the pose code.
    gen_trains_pose_embedder: bool = True
    # Departure, for a run that goes on from trained weights (`--init`): P's encoder (frame -> p, the code the index
    # stores) keeps its weights, and F, P's decoder and G train as usual. The shipped last run refines the embedded
    # face (`loss.face_smooth_weight`) this way without moving a stored pose code. Paper: every weight trains.
    freeze_pose_encoder: bool = False
    # Learning rates decay linearly to 0 (paper sec. 4) over the planned run: F and P over both stages, G and D over
    # stage 2, which they start "from the initial learning rate" (sec. 3.3).
    max_steps: int | None = None  # stop after this many steps (a budget); the schedule stays the planned run's
    seed: int = 0  # network initialisation
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU; or fp32, bf16
    log_every: int = 10  # steps between rows of losses.csv and progress-bar updates
    sample_every: int = 500  # steps between sample grids in samples/
    checkpoint_every: int = 1000  # steps between checkpoint + resume-state writes (and one at the end)
    num_samples: int = 4  # examples (rows) in a sample grid

    def __post_init__(self) -> None:
        for name in ("betas", "critic_betas"):
            betas = tuple(float(b) for b in getattr(self, name))  # YAML gives a list
            object.__setattr__(self, name, betas)
            if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
                raise ValueError(f"train.{name} must be two numbers in [0, 1), got {list(betas)}")
        if self.stage1_epochs < 0 or self.stage2_epochs < 0 or self.stage1_epochs + self.stage2_epochs < 1:
            raise ValueError("train.stage1_epochs and train.stage2_epochs must be >= 0, and not both 0")
        if min(self.lr, self.disc_lr, self.critic_lr) <= 0 or not 0 < self.embedder_lr_factor_stage2 <= 1:
            raise ValueError(
                "train.lr, train.disc_lr and train.critic_lr must be > 0, train.embedder_lr_factor_stage2 in (0, 1]"
            )
        if self.warp_warmup_epochs < 0:  # beyond stage 1 it is all of stage 1 (`--init` stage-2-only runs keep it)
            raise ValueError(f"train.warp_warmup_epochs must be >= 0, got {self.warp_warmup_epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"train.max_steps must be >= 1 or null, got {self.max_steps}")
        if min(self.log_every, self.sample_every, self.checkpoint_every, self.num_samples) < 1:
            raise ValueError("train.log_every, sample_every, checkpoint_every and num_samples must be >= 1")
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


@dataclass(frozen=True)
class Config:
    """A whole posedex configuration."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        self.model.check_size(self.data.size)
        factor = 2 ** (self.loss.pyramid_levels - 1)  # the pyramid L1's coarsest downsampling (model.losses)
        if self.data.size % factor:
            raise ValueError(f"data.size {self.data.size} must be divisible by 2**(loss.pyramid_levels - 1) = {factor}")
        for name in ("label_weight", "domain_weight"):
            if getattr(self.loss, name) > 0 and self.model.pose_dim < len(POSE_COLUMNS):
                raise ValueError(
                    f"loss.{name} works on the pose code's first {len(POSE_COLUMNS)} coordinates (one per SynthVox "
                    f"label): model.pose_dim must be at least {len(POSE_COLUMNS)}, got {self.model.pose_dim}"
                )


def _build(cls: type, values: dict[str, Any], where: str, source: Path) -> Any:
    """Instantiate a (nested) config dataclass from a mapping, rejecting unknown keys."""
    if not isinstance(values, dict):
        raise DataError(source, f"{where or 'config'} must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise DataError(source, f"unknown config key {where + '.' if where else ''}{unknown[0]}")
    kwargs = {}
    for name, value in values.items():
        default = fields[name].default_factory() if fields[name].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}".lstrip("."), source)
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise DataError(source, str(err)) from err


def config_from_dict(values: dict[str, Any], source: str | Path) -> Config:
    """A `Config` from a nested mapping (a checkpoint's JSON, say); `source` names where it came from in errors."""
    return _build(Config, values, "", Path(source))


def preset_path(name_or_path: str | Path) -> Path:
    """A preset name (``tiny``, ``small``, ``paper``) or a YAML file path, as a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return preset_file(str(name_or_path))


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Load a preset or YAML file, then apply dotted overrides such as ``{"data.size": 64}``."""
    path = preset_path(name_or_path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as err:
        raise DataError(path, f"no such config file (presets: {', '.join(preset_names())})") from err
    except (OSError, yaml.YAMLError) as err:
        raise DataError(path, f"cannot read config ({err.__class__.__name__})") from err
    if not isinstance(values, dict):
        raise DataError(path, "a config file must be a YAML mapping")
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return config_from_dict(values, path)


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (what a run actually used)."""
    values = dataclasses.asdict(config)
    for name in ("betas", "critic_betas"):
        values["train"][name] = list(values["train"][name])  # safe_dump writes lists, not tuples
    values["data"]["hold_out"] = list(values["data"]["hold_out"])
    Path(path).write_text(yaml.safe_dump(values, sort_keys=False))
