"""Chapter 8's statistics: budgets, cyclic seed means, closeness, split-half, thresholded verdicts, noisy accuracy."""
from __future__ import annotations

import torch

from helpers.evaluation import budget as bud
from helpers.zoo.architectures import build_model


def test_budgets_up_to_merges_extra():
    assert bud.budgets_up_to(12, [12]) == [1, 2, 4, 8, 12]
    assert bud.budgets_up_to(64, [12]) == [1, 2, 4, 8, 12, 16, 32, 64]
    assert bud.budgets_up_to(3, [5]) == [1, 2]


def test_cyclic_means_known_answer():
    maps = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 2, 3, 3)  # model k's map is constant k
    out = bud.cyclic_means(maps, [1, 2, 4])
    assert out.shape == (3, 4, 2, 3, 3)
    assert out[0, :, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert out[1, :, 0, 0, 0].tolist() == [0.5, 1.5, 2.5, 1.5]  # replicate 3 wraps around: models 3 and 0
    assert torch.allclose(out[2], torch.full_like(out[2], 1.5))
    assert bud.cyclic_means(maps, [2], start=1)[0, 0, 0, 0, 0] == 1.5


def test_closeness_and_split_half():
    g = torch.Generator().manual_seed(0)
    signal = torch.randn(3, 8, 8, generator=g)
    maps = signal + 0.5 * torch.randn(6, 3, 8, 8, generator=g)
    est = bud.cyclic_means(maps[:3], [1, 3])
    close = bud.closeness(est, signal)
    assert close.shape == (2, 3, 3)
    assert close[1].mean() > close[0].mean()  # averaging three noisy maps gets closer to the signal
    same = bud.split_half_seed(maps[:3], maps[:3], [1, 2])
    torch.testing.assert_close(same, torch.ones_like(same))
    assert bud.split_half_single(est).shape == (2, 3, 3)


def test_decide_codes_and_threshold():
    g = torch.Generator().manual_seed(1)
    noise = 0.01 * torch.randn(10, 30, generator=g)
    assert bud.decide(0.2 + noise, 0.05, "b", "w", "e", n_boot=200).code == "+"
    assert bud.decide(-0.2 + noise, 0.05, "b", "w", "e", n_boot=200).code == "-"
    assert bud.decide(noise, 0.05, "b", "w", "e", n_boot=200).code == "="
    d = bud.decide(0.05 + noise, 0.05, "b", "w", "e", n_boot=200)  # straddles the threshold
    assert d.code == "?" and "threshold ±0.05" in d.text


def test_noisy_accuracy_at_zero_noise_is_the_models():
    torch.manual_seed(0)
    model = build_model("lenet", 1, 10, image_size=28).eval()
    x = torch.randn(40, 1, 28, 28)
    y = model(x).argmax(1)
    y[:10] = (y[:10] + 1) % 10
    acc = bud.noisy_accuracy(model, x, y, [0.0, 2.0], n=3)
    assert acc[0] == 0.75
    assert acc[1] < 0.75  # heavy noise moves the model


def test_faithfulness_vs_blur_keys_and_shapes():
    torch.manual_seed(0)
    models = [build_model("lenet", 1, 10, image_size=28).eval() for _ in range(2)]
    x, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 2])
    single = torch.randn(2, 3, 28, 28)
    f = bud.faithfulness_vs_blur(models, x, y, single, {"avg": single.mean(0).expand(2, -1, -1, -1)},
                                 torch.zeros_like(x), n_steps=4)
    assert set(f["deletion"]) == {"single", "avg", "avg blur"}
    assert f["insertion"]["avg blur"].shape == (2, 3)
