"""The inference API (`model.daegan.DAEGAN`) at the tiny preset: checkpoint round trip and strict loading, pose codes
for search, embedded faces, Fig. 7's reconstruction, which renderer reenacts, and device/input-form agnosticism.

Weights are untrained but jittered off their zero-initialised heads, so every output depends on its input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.checkpoint import save_checkpoint
from model.composite import paste_over_source
from model.config import load_config
from model.daegan import DAEGAN, to_images
from model.data.errors import DataError
from model.sharp_render import render_from_sources

SIZE = 32  # the tiny preset's frame side
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]  # every device this machine has


def make_model(seed: int = 0, **overrides: object) -> DAEGAN:
    """A tiny DAE-GAN (with D) whose weights are seeded and moved off their initial values."""
    torch.manual_seed(seed)
    model = DAEGAN.from_config(load_config("tiny", dict(overrides)))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.05)
    return model.eval()


def images(n: int, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """`n` seeded RGB uint8 images `(n, size, size, 3)`: smooth blobs, so warps and codes vary with the input."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.float32)
    up = torch.nn.functional.interpolate(
        torch.from_numpy(coarse).permute(0, 3, 1, 2), size=(size, size), mode="bicubic", align_corners=False
    )
    return up.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def model() -> DAEGAN:
    return make_model()


@pytest.fixture(scope="module")
def checkpoint(model: DAEGAN, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "stage1.safetensors"
    model.save(path, metadata={"step": "3"})
    return path


# --- checkpoints ----------------------------------------------------------------------------------------------------


def test_from_checkpoint_reproduces_the_saved_model(model: DAEGAN, checkpoint: Path) -> None:
    loaded = DAEGAN.from_checkpoint(checkpoint, torch.device("cpu"))
    assert loaded.config == model.config and loaded.metadata["step"] == "3" and loaded.metadata["stage"] == "1"
    assert not loaded.training and not any(net.training for net in loaded.networks().values())
    assert loaded.discriminator is None and not loaded.generator_trained
    src, drv = images(3, seed=1), images(5, seed=2)
    assert torch.equal(loaded.encode_pose(drv), model.encode_pose(drv))
    assert torch.equal(loaded.embed_face(src).face, model.embed_face(src).face)
    assert torch.equal(loaded.reenact(src, drv).image, model.reenact(src, drv).image)
    assert torch.equal(
        loaded.reenact(src, drv, renderer="generator").image, model.reenact(src, drv, renderer="generator").image
    )
    with_d = DAEGAN.from_checkpoint(checkpoint, with_discriminator=True)
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            with_d.discriminator.state_dict().values(), model.discriminator.state_dict().values(), strict=True
        )
    )


def test_checkpoint_missing_a_network_is_rejected(model: DAEGAN, tmp_path: Path) -> None:
    path = tmp_path / "partial.safetensors"
    save_checkpoint(path, {"face_embedder": model.face_embedder, "generator": model.generator}, model.config)
    with pytest.raises(DataError, match="no weights for pose_embedder") as err:
        DAEGAN.from_checkpoint(path)
    assert err.value.path == path
    with pytest.raises(DataError, match="no weights for pose_embedder, discriminator"):
        DAEGAN.from_checkpoint(path, with_discriminator=True)


def test_generator_is_required_only_once_trained(model: DAEGAN, tmp_path: Path) -> None:
    nets = {"face_embedder": model.face_embedder, "pose_embedder": model.pose_embedder}
    stage1, stage2 = tmp_path / "s1.safetensors", tmp_path / "s2.safetensors"
    save_checkpoint(stage1, nets, model.config, {"stage": "1"})
    save_checkpoint(stage2, nets, model.config, {"stage": "2"})
    assert DAEGAN.from_checkpoint(stage1).reenact(images(1), images(2)).renderer == "decoder"
    with pytest.raises(DataError, match="no weights for generator"):
        DAEGAN.from_checkpoint(stage2)


def test_weights_that_do_not_fit_the_config_are_rejected(model: DAEGAN, tmp_path: Path) -> None:
    path = tmp_path / "mismatch.safetensors"
    other = load_config("tiny", {"model.pose_dim": 8})  # the weights are for pose_dim 16
    save_checkpoint(path, model.networks(), other)
    with pytest.raises(DataError, match="weights of pose_embedder do not fit") as err:
        DAEGAN.from_checkpoint(path)
    assert err.value.path == path


# --- pose codes -----------------------------------------------------------------------------------------------------


def test_encode_pose_gives_unit_rows_independent_of_batching(model: DAEGAN) -> None:
    frames = images(7, seed=3)
    codes = model.encode_pose(frames)
    assert codes.shape == (7, model.pose_dim) and codes.dtype == torch.float32 and codes.device.type == "cpu"
    torch.testing.assert_close(codes.norm(dim=1), torch.ones(7))
    assert torch.equal(codes, model.encode_pose(frames))  # deterministic
    assert (codes[0] - codes[1]).abs().max() > 1e-3  # different frames, different poses
    model.batch_size = 3  # chunks of 3, 3, 1
    try:
        torch.testing.assert_close(model.encode_pose(frames), codes, rtol=1e-5, atol=1e-6)
    finally:
        model.batch_size = 64
    raw = model.encode_pose(frames, normalize=False)
    torch.testing.assert_close(raw / raw.norm(dim=1, keepdim=True), codes)
    assert not torch.allclose(raw.norm(dim=1), torch.ones(7))  # the renderers get the raw code


def test_inference_leaves_training_mode_alone(model: DAEGAN) -> None:
    frames = images(2, seed=4)
    expected = model.encode_pose(frames)
    model.train()
    try:
        assert torch.equal(model.encode_pose(frames), expected)  # run in eval mode all the same
        assert model.pose_embedder.training and model.generator.training
    finally:
        model.eval()


# --- embedded faces and reconstruction ------------------------------------------------------------------------------


def test_embed_face_fuses_k_frames(model: DAEGAN) -> None:
    frames = images(3, seed=5)
    emb = model.embed_face(frames)
    assert emb.face.shape == (3, SIZE, SIZE) and emb.flow.shape == (3, 2, SIZE, SIZE)
    assert emb.attention.shape == (3, 1, SIZE, SIZE) and emb.warped.shape == (3, 3, SIZE, SIZE)
    torch.testing.assert_close(emb.attention.sum(dim=0), torch.ones(1, SIZE, SIZE))  # eq. 1's A' sums to 1 over k
    torch.testing.assert_close(emb.face, (emb.attention * emb.warped).sum(dim=0))
    assert not torch.equal(emb.face, model.embed_face(frames[:1]).face)  # every frame counts
    batched = model.embed_face(np.stack([frames, images(3, seed=6)]))  # (B=2, K=3, H, W, 3)
    assert batched.face.shape == (2, 3, SIZE, SIZE) and batched.flow.shape == (2, 3, 2, SIZE, SIZE)
    torch.testing.assert_close(batched.face[0], emb.face)
    torch.testing.assert_close(batched.face[1], model.embed_face(images(3, seed=6)).face)


def test_reconstruct_returns_fig7_pictures(model: DAEGAN) -> None:
    src, tgt = images(2, seed=7), images(4, seed=8)
    rec = model.reconstruct(src, tgt)
    assert rec.face.shape == (3, SIZE, SIZE)
    assert rec.face_flow.shape == (2, 2, SIZE, SIZE) and rec.face_flow_colour.shape == (2, 3, SIZE, SIZE)
    assert rec.reconstruction.shape == (4, 3, SIZE, SIZE) and rec.pose_code.shape == (4, model.pose_dim)
    assert rec.flow.shape == (4, 2, SIZE // 4, SIZE // 4) and rec.flow_colour.shape == (4, 3, SIZE // 4, SIZE // 4)
    warp_side = SIZE if model.config.model.warp_full_resolution else SIZE // 4  # tiny: the full-resolution warp
    assert rec.warped.shape == (4, 3, warp_side, warp_side)
    for picture in (rec.reconstruction, rec.flow_colour, rec.face_flow_colour):
        assert picture.min() >= -1 and picture.max() <= 1
    assert rec.flow.abs().max() > 0  # jittered: a real warp, drawn in colour, not a blank white
    torch.testing.assert_close(rec.face, model.embed_face(src).face)
    torch.testing.assert_close(rec.pose_code, model.encode_pose(tgt, normalize=False))
    # the decoder renderer of reenact is this same reconstruction (eq. 2 with the source's face), its two warps
    # composed into one sampling of the source frames (model.sharp_render): equal but for the second interpolation
    drawn = model.reenact(src, tgt, renderer="decoder", keep_background=False).image
    assert (drawn - rec.reconstruction).abs().mean() < 0.04  # 0.021 here, with the jittered large warps


def test_reenact_pastes_the_rendering_over_the_first_source_frame(model: DAEGAN) -> None:
    src, drv = images(2, seed=9), images(3, seed=10)
    pasted, whole = model.reenact(src, drv), model.reenact(src, drv, keep_background=False)
    first = model.to_frames(src)[0]  # (3, S, S): the frame whose background the output keeps
    torch.testing.assert_close(pasted.image, paste_over_source(whole.image, first).image)
    assert not torch.equal(pasted.image, whole.image)  # outside the head: the source's pixels, not the decoder's
    torch.testing.assert_close(model.draw(src, whole.pose_code), pasted.image)
    with pytest.raises(ValueError, match="pose_code must be"):
        model.draw(src, whole.pose_code[:, :3])
    with pytest.raises(ValueError, match="renderer must be"):
        model.draw(src, whole.pose_code, renderer="painter")


# --- which renderer reenacts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage, renderer", [("1", "decoder"), ("2", "generator"), ("adversarial", "generator")])
def test_reenact_renderer_follows_the_checkpoint_stage(
    model: DAEGAN, tmp_path: Path, stage: str, renderer: str
) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model.networks(), model.config, {"stage": stage})
    loaded = DAEGAN.from_checkpoint(path)
    src, drv = images(2, seed=9), images(3, seed=10)
    out = loaded.reenact(src, drv, keep_background=False)  # the renderer's own frame (model.composite aside)
    assert out.renderer == renderer and out.image.shape == (3, 3, SIZE, SIZE)
    face, pose = model.embed_face(src).face, model.encode_pose(drv, normalize=False)
    faces = face.expand(3, -1, -1, -1)
    with torch.no_grad():
        expected = model.pose_embedder.decode(pose, faces)  # eq. 2
        if renderer == "generator":  # the tiny preset's G refines P's rendering (model.generator)
            expected = model.generator(faces, pose, expected.reconstruction)
        else:  # the decoder draws from the source frames (model.sharp_render)
            expected = render_from_sources(model.to_frames(src), model.embed_face(src), expected)
    torch.testing.assert_close(out.image, expected.clamp(-1, 1))
    assert DAEGAN.from_checkpoint(path, generator_trained=False).reenact(src, drv).renderer == "decoder"


@pytest.mark.parametrize("refines", [True, False])
def test_generate_is_the_one_rule_for_what_g_is_given(refines: bool) -> None:
    """`generate` (training's path, given eq. 2's reconstruction) and `render` (inference's, which decodes it) give
    the same image; G gets P's rendering as its draft exactly when it refines the decoder."""
    model = make_model(seed=3, **{"model.gen_refines_decoder": refines})
    face = model.embed_face(images(2, seed=11)).face.expand(3, -1, -1, -1)  # (3, 3, S, S)
    pose = model.encode_pose(images(3, seed=12), normalize=False)  # (3, pose_dim)
    with torch.no_grad():
        rec = model.pose_embedder.decode(pose, face)
        fake = model.generate(face, pose, rec.reconstruction)
        expected = model.generator(face, pose, rec.reconstruction if refines else None)
    assert torch.equal(fake, expected)
    torch.testing.assert_close(model.render(face, pose, renderer="generator"), fake.clamp(-1, 1))


@pytest.mark.parametrize(
    "stage, named, default",
    [
        ("2", "decoder", "decoder"),
        ("2", "generator", "generator"),
        ("1", "decoder", "decoder"),
        ("1", "generator", None),
        ("2", "paintbrush", None),
    ],
)
def test_a_checkpoint_can_name_its_renderer(
    model: DAEGAN, tmp_path: Path, stage: str, named: str, default: str | None
) -> None:
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, model.networks(), model.config, {"stage": stage, "renderer": named})
    if default is None:  # an untrained G, or no such renderer: the checkpoint is refused, by name
        with pytest.raises(DataError, match=f"names renderer '{named}'") as err:
            DAEGAN.from_checkpoint(path)
        assert err.value.path == path
        return
    loaded = DAEGAN.from_checkpoint(path)
    assert loaded.default_renderer == default
    assert loaded.reenact(images(2, seed=9), images(1, seed=10)).renderer == default
    assert loaded.reenact(images(2, seed=9), images(1, seed=10), renderer="decoder").renderer == "decoder"


def test_save_records_the_stage(model: DAEGAN, tmp_path: Path) -> None:
    model.generator_trained = True
    try:
        model.save(tmp_path / "s2.safetensors")
        assert DAEGAN.from_checkpoint(tmp_path / "s2.safetensors").default_renderer == "generator"
        with pytest.raises(ValueError, match="contradicts"):
            model.save(tmp_path / "bad.safetensors", metadata={"stage": "1"})
    finally:
        model.generator_trained = False
    assert not (tmp_path / "bad.safetensors").exists()


# --- input forms and devices ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_input_forms_and_devices_agree_and_outputs_are_on_cpu(model: DAEGAN, checkpoint: Path, device: str) -> None:
    frames = images(4, seed=11)
    expected = model.encode_pose(frames)
    atol = 1e-3 if device == "cuda" else 1e-6  # CUDA convolutions may use TF32
    on_device = DAEGAN.from_checkpoint(checkpoint, torch.device(device))
    floats = on_device.to_frames(frames).to(device)  # (N, 3, S, S) in [-1, 1] on the device
    forms = [frames, list(frames), torch.from_numpy(frames), floats]
    for form in forms:
        codes = on_device.encode_pose(form)
        assert codes.device.type == "cpu"
        torch.testing.assert_close(codes, expected, rtol=0, atol=atol)
    src = images(2, seed=12)
    outputs = [
        *on_device.embed_face(src),
        *on_device.reconstruct(src, frames)[:4],
        *on_device.reenact(src, floats)[:3],
        on_device.reenact(src, frames, renderer="generator").image,
    ]
    assert all(t.device.type == "cpu" and t.dtype == torch.float32 for t in outputs)
    torch.testing.assert_close(
        on_device.reenact(torch.from_numpy(src), floats).image, model.reenact(src, frames).image, rtol=0, atol=atol
    )


def test_image_conversions(model: DAEGAN) -> None:
    square = images(2, seed=13)
    assert np.array_equal(to_images(model.to_frames(square)), square)  # S x S uint8 round-trips exactly
    assert np.array_equal(model.to_images(model.to_frames(square[0])[0]), square[0])
    wide = np.zeros((40, 60, 3), np.uint8)
    wide[:, 10:50] = 200  # the centre square is all 200: centre-cropped, not squashed
    frame = model.to_frames(wide)
    assert frame.shape == (1, 3, SIZE, SIZE) and torch.allclose(frame, torch.full_like(frame, 200 / 127.5 - 1))
    assert to_images(torch.full((3, 2, 2), 5.0)).max() == 255  # clipped, not wrapped
    with pytest.raises(ValueError, match="float frames must be"):
        model.to_frames(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="RGB uint8"):
        model.to_frames(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="renderer must be"):
        model.reenact(square, square, renderer="gan")  # type: ignore[arg-type]
