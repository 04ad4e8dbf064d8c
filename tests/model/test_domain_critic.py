"""Domain adversarial training of the pose code (`loss.domain_weight`, L_A; `model.domain_critic`): the reversed
gradient, the balanced critic loss, that the mechanism carries a label's meaning to a domain without labels, and
that the trainer trains, saves and resumes the critic beside P.

The learning test is a linear world small enough to know the answer: seven labelled factors z make a 16-long
observation x = A z + noise; a real observation adds a fixed offset that no label explains. An encoder trained on
the labelled (synthetic) observations alone reads z back there, but maps every real observation off by the
offset's image; with L_A it must cancel the offset, so it reads the real observations' z too. Rates as in
training: the critic at `train.critic_lr` 1e-3 with betas 0.5 / 0.9, the encoder no faster (P trains at 2.5e-4).
Measured on seeds 0-4 (0 is the test's), lambda_A 0.1 as the shipped run: real observations' squared error of the
read-out without / with L_A 1.01 / 0.041, 2.82 / 0.021, 1.34 / 0.022, 0.84 / 0.023, 1.22 / 0.023; synthetic
0.014-0.030 either way. Asserted: with L_A under a tenth of without, the synthetic fit no worse than 1.5x. With
the encoder ten times faster than the critic the same term overshoots (real errors 548 / 12.5 / 256 / 0.44 / 0.047):
why the critic's rate is its own and higher than P's.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from model.config import load_config
from model.daegan import DAEGAN
from model.data.synthvox import synthesize
from model.domain_critic import DomainCritic, reverse_gradient
from model.losses import domain_loss
from model.train import train
from tests.conftest import write_frame

CPU = torch.device("cpu")


def test_reverse_gradient_flips_the_gradient_and_nothing_else() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = reverse_gradient(x)
    assert torch.equal(y, x)
    (y * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-1.0, -2.0, -3.0]))


def test_the_critic_reads_the_labelled_coordinates_and_pushes_the_code_against_its_loss() -> None:
    critic = DomainCritic(7, 8)
    code = torch.randn(4, 16, requires_grad=True)
    logits = critic(code)
    plain = critic.net(code[:, :7]).squeeze(1)
    assert torch.allclose(logits, plain)
    logits.sum().backward()
    reference = torch.autograd.grad(critic.net(code[:, :7]).sum(), code)[0]
    assert torch.allclose(code.grad, -reference) and torch.equal(code.grad[:, 7:], torch.zeros(4, 9))


def test_the_loss_weighs_each_domain_equally() -> None:
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    real = torch.tensor([True, False, False, False])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = 0.5 * (bce(logits[:1], torch.ones(1)) + bce(logits[1:], torch.zeros(3)))
    assert domain_loss(logits, real).item() == pytest.approx(expected.item())
    assert domain_loss(torch.zeros(4), real).item() == pytest.approx(math.log(2))  # cannot tell


def test_a_batch_of_one_domain_gives_zero_through_the_graph() -> None:
    logits = torch.randn(3, requires_grad=True)
    for real in (torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)):
        logits.grad = None
        loss = domain_loss(logits, real)
        loss.backward()
        assert loss.item() == 0.0 and torch.equal(logits.grad, torch.zeros(3))


def linear_world(seed: int, domain_weight: float, encoder_lr: float = 1e-3) -> tuple[float, float]:
    """Train a linear encoder on the labelled observations (L_Y's squared error) plus `domain_weight` x L_A through
    a critic, on a world where real observations carry an offset no label explains; return the squared error of
    the read-out on fresh (real, synthetic) observations."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    mixing, offset = torch.randn(16, 7, generator=g), 3.0 * torch.randn(16, generator=g)

    def observe(n: int, real: bool) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(n, 7, generator=g)
        return z @ mixing.T + 0.3 * torch.randn(n, 16, generator=g) + (offset if real else 0.0), z

    encoder = torch.nn.Linear(16, 7)
    critic = DomainCritic(7, 32)
    encoder_opt = torch.optim.Adam(encoder.parameters(), lr=encoder_lr)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))  # train.critic_lr, critic_betas
    for _ in range(1500):
        (x_syn, z_syn), (x_real, _) = observe(56, False), observe(8, True)  # real frames few, as in training
        codes = encoder(torch.cat([x_syn, x_real]))
        loss = ((codes[:56] - z_syn) ** 2).mean()
        real = torch.arange(64) >= 56
        loss = loss + domain_weight * domain_loss(critic(codes), real)
        encoder_opt.zero_grad()
        critic_opt.zero_grad()
        loss.backward()
        encoder_opt.step()
        critic_opt.step()
    with torch.no_grad():
        errors = [((encoder(x) - z) ** 2).mean().item() for x, z in (observe(2000, True), observe(2000, False))]
    return errors[0], errors[1]


def test_domain_confusion_carries_the_labels_meaning_to_the_unlabelled_domain() -> None:
    real_without, synthetic_without = linear_world(0, 0.0)
    real_with, synthetic_with = linear_world(0, 0.1)
    assert real_with < 0.1 * real_without, (real_with, real_without)
    assert synthetic_with < 1.5 * synthetic_without, (synthetic_with, synthetic_without)


@pytest.fixture(scope="module")
def mixed_data(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("mixed")
    synthesize(
        base / "synthvox", identities=3, videos_per_identity=2, frames=8, size=32, seed=0, workers=1, progress=False
    )
    for frame in range(8):  # an unlabelled collection: real frames, as in `make train`
        write_frame(base / "real" / "person" / "clip" / f"{frame:05d}.png", 40 + 20 * frame, size=32)
    return [base / "synthvox", base / "real"]


def test_the_trainer_trains_saves_and_resumes_the_critic(mixed_data: list[Path], tmp_path: Path) -> None:
    def config(max_steps: int):
        return load_config(
            "tiny",
            {
                "data.test_fraction": 0.0,
                "loss.domain_weight": 0.1,
                "train.adversarial": False,
                "train.max_steps": max_steps,
            },
        )

    straight = train(config(12), mixed_data, tmp_path / "a", device=CPU, progress=False)
    critic = straight.model.domain_critic
    assert critic is not None
    log = pd.read_csv(tmp_path / "a" / "losses.csv")
    assert (log["domain"] > 0.3).any()  # the critic's loss (ln 2 when it cannot tell), logged

    # the checkpoint holds the critic for training; inference leaves it out
    assert DAEGAN.from_checkpoint(straight.checkpoint).domain_critic is None
    loaded = DAEGAN.from_checkpoint(straight.checkpoint, with_discriminator=True).domain_critic
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), critic.state_dict().values()))
    fresh = DomainCritic(7, straight.model.config.model.critic_hidden_dim)
    assert not torch.equal(fresh.net[0].weight, critic.net[0].weight)  # it trained

    # a stopped run resumes to the same critic as one that never stopped
    train(config(6), mixed_data, tmp_path / "b", device=CPU, progress=False)
    resumed = train(config(12), mixed_data, tmp_path / "b", device=CPU, resume=True, progress=False)
    assert all(
        torch.equal(a, b)
        for a, b in zip(resumed.model.domain_critic.state_dict().values(), critic.state_dict().values())
    )
