"""Exercises with checkers: each checker compares a student's answer with what *this run* computes and returns a
:class:`Feedback` (shown as a one-line verdict marked ✓ or ✗, symbols that common fonts have, unlike emoji) that
says, when the answer is wrong, what to look at.

The expected values are never stored: they are computed from the same models, images and maps the chapter used,
so a checker is right under every profile. A checker never prints the expected answer; its message names the
usual mistake (a mean that contains the model itself, uncentred maps, a biased signal estimate…).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence
import torch
from torch import nn

from ..evaluation.intervals import Interval


@dataclass(frozen=True)
class Feedback:
    """A checker's verdict: truthy when the answer is right."""

    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return ("✓ Right: " if self.correct else "✗ Not yet: ") + self.message

    def _repr_markdown_(self) -> str:
        """The verdict folded away (a reader of the book or of Colab opens it): under a hidden reference solution,
        a visible "✓ Right: gradcam_relu is the method with …" would give the answer away."""
        return f"<details><summary>The checker's verdict</summary>\n\n{self}\n\n</details>"

    __repr__ = __str__


def _as_tensor(answer: Any, what: str) -> torch.Tensor | Feedback:
    if answer is None:
        return Feedback(False, f"no answer yet: compute {what} and pass it to the checker")
    try:
        return torch.as_tensor(answer).detach().double().cpu()
    except (TypeError, ValueError, RuntimeError):
        return Feedback(False, f"{what} should be a number or a tensor, got {type(answer).__name__}")


def close(answer: Any, expected: torch.Tensor | float, what: str, hint: str = "", rtol: float = 1e-3,
          atol: float = 1e-5) -> Feedback:
    """Right when ``answer`` has ``expected``'s shape and equals it within ``rtol``/``atol``."""
    a = _as_tensor(answer, what)
    if isinstance(a, Feedback):
        return a
    e = torch.as_tensor(expected).detach().double().cpu()
    if a.shape != e.shape:
        return Feedback(False, f"{what} should have shape {tuple(e.shape)}, yours has {tuple(a.shape)}")
    if torch.allclose(a, e, rtol=rtol, atol=atol):
        return Feedback(True, f"{what} matches this run's value.")
    gap = float((a - e).abs().max())
    return Feedback(False, f"{what} differs from this run's value (largest difference {gap:.3g}). {hint}".strip())


def _trap(answer: Any, traps: Mapping[str, torch.Tensor | float], rtol: float = 1e-3) -> str:
    """The message of the first known mistake whose value the answer matches, else ''."""
    a = _as_tensor(answer, "")
    if isinstance(a, Feedback):
        return ""
    for message, value in traps.items():
        v = torch.as_tensor(value).detach().double().cpu()
        if v.shape == a.shape and torch.allclose(a, v, rtol=rtol, atol=1e-6):
            return message
    return ""


def choice(answer: Any, expected: Any, options: Sequence[Any], what: str, hint: str = "") -> Feedback:
    """Right when ``answer`` equals ``expected``; an answer outside ``options`` is named as such."""
    if answer is None:
        return Feedback(False, f"no answer yet: name {what}")
    if answer not in options:
        shown = ", ".join(map(str, options[:12])) + (" …" if len(options) > 12 else "")
        return Feedback(False, f"{answer!r} is not one of the possible answers ({shown})")
    if answer == expected:
        return Feedback(True, f"{answer} is {what} in this run.")
    return Feedback(False, f"{answer} is not {what} in this run. {hint}".strip())


def gradient_by_hand(answer: Any, model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> Feedback:
    """Exercise 1.1: ∂z_c/∂x of every image for its own class, with ``torch.autograd`` (Simonyan et al. 2014)."""
    from ..attribution.registry import attribute

    return close(answer, attribute("gradient", model, x, target), "your gradient", rtol=1e-4, atol=1e-6,
                 hint="Differentiate the sum over images of each image's own logit, z[i, target[i]], with respect to "
                      "the input x (not its absolute value, and not the softmax probability).")


def leave_one_out(answer: Any, maps: torch.Tensor) -> Feedback:
    """Exercise 1.2: mean Pearson correlation of each model's map (M, N, H, W) with the mean of the *other*
    models, over models and images."""
    from ..attribution.maps import pearson

    m = maps.shape[0]
    rest = (maps.sum(0, keepdim=True) - maps) / (m - 1)
    with_itself = pearson(maps, maps.mean(0, keepdim=True)).mean()
    trap = _trap(answer, {"Your mean contains the model itself, so it is partly correlated with its own noise: "
                          "leave model m out of the mean it is compared with.": with_itself})
    out = close(answer, pearson(maps, rest).mean(), "your leave-one-out correlation", hint=trap or
                "For each model m, average the other M − 1 maps, correlate over pixels, then average over models "
                "and images.")
    return out


def least_agreeing(answer: Any, agreement: Mapping[str, Mapping[str, Interval]]) -> Feedback:
    """Exercise 2.1: the method whose single-model maps agree least (lowest point estimate of the pairwise
    correlation); an answer whose interval overlaps the lowest one is told so."""
    pairwise = {m: a["pairwise"] for m, a in agreement.items()}
    lowest = min(pairwise, key=lambda m: pairwise[m].point)
    hint = ""
    if answer in pairwise and answer != lowest:
        mine, low = pairwise[answer], pairwise[lowest]
        hint = ("Its point estimate is not the lowest, though its interval overlaps the lowest method's: this run "
                "could not separate the two." if mine.low <= low.high else
                "Sort the methods by the point estimate of `agree[m]['pairwise']`.")
    return choice(answer, lowest, list(pairwise), "the method with the lowest pairwise agreement", hint)


def averaging_gain(answer: Any, maps: torch.Tensor) -> Feedback:
    """Exercise 2.2: for maps (M, N, H, W), the correlation between the means of the first and the second half of
    the models, minus the mean correlation between two single models (pairs of distinct models), averaged over
    images."""
    from ..attribution.maps import pearson
    from ..evaluation.correlation import mean_pairwise_correlation

    m = maps.shape[0]
    h = m // 2
    if h < 1:
        raise ValueError(f"the averaging gain needs at least two models, got {m}")
    halves = pearson(maps[:h].mean(0), maps[h:2 * h].mean(0)).mean()
    pairwise = mean_pairwise_correlation(maps).mean()
    with_self = ((m - 1) * pairwise + 1) / m  # the mean over all M² pairs, each model's 1 with itself included
    trap = _trap(answer, {"You included each model's correlation with itself (1) in the pairwise mean: use pairs of "
                          "distinct models.": halves - with_self})
    return close(answer, halves - pairwise, "your averaging gain", hint=trap or
                 "Split-half: mean of models [0, M/2) against mean of models [M/2, M), Pearson over pixels, averaged "
                 "over images; subtract the mean Pearson correlation over all pairs of distinct models.")


def snr_by_definition(answer: Any, maps: torch.Tensor) -> Feedback:
    """Exercise 3.1: the single-map SNR per image (N,) of maps (M, N, H, W), from its definition: centre each map,
    signal = ‖ā‖² − tr Σ̂ / M, noise = tr Σ̂ (Σ̂ the unbiased covariance over models), SNR = signal / noise."""
    from ..evaluation.snr import energy_snr

    c = maps.double() - maps.double().mean((-2, -1), keepdim=True)
    u = maps.double()
    m = maps.shape[0]

    def ratio(a: torch.Tensor, unbiased: bool = True) -> torch.Tensor:
        mean = a.mean(0)
        noise = ((a - mean) ** 2).sum((-2, -1)).sum(0) / (m - 1)
        signal = (mean ** 2).sum((-2, -1)) - (noise / m if unbiased else 0)
        return signal / noise

    trap = _trap(answer, {"Centre every map first (subtract its own mean over pixels): an offset shared by all "
                          "models is not signal.": ratio(u),
                          "‖ā‖² overestimates the signal by tr Σ̂ / M (the mean still carries noise): subtract it.":
                              ratio(c, unbiased=False)})
    return close(answer, energy_snr(maps), "your SNR per image", rtol=1e-3, hint=trap or
                 "Per image: centre each model's map, take the mean map ā over models and Σ̂ the covariance with "
                 "M − 1 in the denominator; tr Σ̂ is the summed per-pixel variance.")


def lowest_snr_class(answer: Any, per_class: Sequence[Interval], class_names: Sequence[str]) -> Feedback:
    """Exercise 3.2: the class (its name) with the lowest SNR point estimate; overlapping intervals are noted."""
    names = [str(c) for c in class_names]
    lowest = min(range(len(per_class)), key=lambda k: per_class[k].point)
    hint = ""
    if answer in names and names.index(answer) != lowest:
        mine, low = per_class[names.index(answer)], per_class[lowest]
        hint = ("Its point estimate is not the lowest, though its interval overlaps the lowest class's: the run "
                "cannot tell the two apart." if mine.low <= low.high else
                "Compare the point estimates of `per_class[cm]`, one Interval per class.")
    return choice(answer, names[lowest], names, "the class with the lowest SNR", hint)


def split_half_by_hand(answer: Any, maps: torch.Tensor, m: int) -> Feedback:
    """Exercise 3.3: the split-half correlation of models [0, m) against [m, 2m): the Pearson correlation of
    their two mean maps, averaged over images."""
    from ..attribution.maps import pearson

    if not 1 <= m <= maps.shape[0] // 2:
        raise ValueError(f"m={m}: two disjoint halves need 1 ≤ m ≤ {maps.shape[0] // 2}")
    trap = _trap(answer, {"The two halves overlap (both contain model 0…): take models [0, m) and [m, 2m).":
                          pearson(maps[:m].mean(0), maps[:2 * m].mean(0)).mean()})
    return close(answer, pearson(maps[:m].mean(0), maps[m:2 * m].mean(0)).mean(), "your split-half correlation",
                 hint=trap or "Average the maps within each half first, then correlate the two means over pixels.")


def lowest_scoring_network(answer: Any, logits: torch.Tensor) -> Feedback:
    """Exercise 4.1: the network (index into the zoo) that gives network 0's final dreams the lowest mean target
    logit, from a table (M, B) of target logits (networks × dreamed classes), network 0 itself excluded."""
    mean = logits.double().mean(1)
    mean[0] = float("inf")
    return choice(answer, int(mean.argmin()), list(range(1, logits.shape[0])),
                  "the network that scores network 0's dreams lowest",
                  "Average each row of `s_scores[0]` (one network, all classes) and skip row 0 (network 0 itself).")


def dream_logit(answer: Any, model: nn.Module, images: torch.Tensor, classes: Sequence[int]) -> Feedback:
    """Exercise 4.2: one network's mean target logit over the dreamed images (B, C, H, W) of ``classes``."""
    with torch.no_grad():
        z = model(images.to(next(model.parameters()).device))
    target = torch.as_tensor(classes, device=z.device).long().reshape(-1)
    prob = z.softmax(-1).gather(1, target[:, None]).mean()
    trap = _trap(answer, {"That is the probability: the exercise asks for the logit (before the softmax).": prob})
    return close(answer, z.gather(1, target[:, None]).mean(), "your mean target logit", hint=trap or
                 "Forward the final images through the network and take, for image b, the logit of class b's index.")


def _is_max(responses: torch.Tensor) -> torch.Tensor:
    """(…, K, H, W) booleans: the classes that reach the largest response at each pixel (ties included)."""
    r = responses.detach().double().cpu()
    return r == r.amax(-3, keepdim=True)


def dominant_by_hand(answer: Any, responses: torch.Tensor) -> Feedback:
    """Exercise 5.1: the dominant class per pixel, argmax over the K response maps (…, K, H, W) (Kumar et al.).
    Where classes tie (e.g. all responses 0), any of the tied classes is right."""
    expected = _is_max(responses)
    a = _as_tensor(answer, "your dominant-class map")
    if isinstance(a, Feedback):
        return a
    if a.shape != expected.shape[:-3] + expected.shape[-2:]:
        return Feedback(False, f"your dominant-class map should have shape {tuple(responses.shape[:-3])} + "
                               f"{tuple(responses.shape[-2:])} (the class axis reduced), yours has "
                               f"{tuple(a.shape)}: take the argmax over the class axis, dim=-3")
    k = responses.shape[-3]
    idx = a.long()
    if idx.min() < 0 or idx.max() >= k:
        return Feedback(False, f"class indices must lie in 0…{k - 1}: take the argmax over the class axis, dim=-3")
    wrong = float((~expected.gather(-3, idx.unsqueeze(-3)).squeeze(-3)).double().mean())
    if wrong == 0:
        return Feedback(True, "your dominant-class map matches this run's.")
    return Feedback(False, f"{wrong:.1%} of your pixels name a class without the largest response. Take the argmax "
                           f"of the responses over the class axis (dim=-3), not over pixels.")


def changed_share(answer: Any, unit: torch.Tensor, response: torch.Tensor) -> Feedback:
    """Exercise 5.2: the share of pixels whose dominant class differs between two readings (…, K, H, W). A pixel
    where a reading has tied classes may count either way, so any share between the two counts is right."""
    a, b = _is_max(unit), _is_max(response)
    disjoint = ~(a & b).any(-3)
    same_unique = (a.sum(-3) == 1) & (b.sum(-3) == 1) & (a & b).any(-3)
    low, high = float(disjoint.double().mean()), float(1 - same_unique.double().mean())
    v = _as_tensor(answer, "your share of changed pixels")
    if isinstance(v, Feedback):
        return v
    if v.numel() != 1:
        return Feedback(False, f"answer with one number (a share of all pixels), yours has shape {tuple(v.shape)}")
    share = float(v)
    if low - 1e-9 <= share <= high + 1e-9:
        return Feedback(True, "your share of changed pixels matches this run's.")
    if 1 - high - 1e-9 <= share <= 1 - low + 1e-9:
        return Feedback(False, "that is the share of pixels that keep their class: the exercise asks for those that "
                               "change.")
    return Feedback(False, "your share differs from this run's. Compute the dominant class of each reading "
                           "(argmax over dim=-3) and average (dominant_a != dominant_b) over all pixels.")


def ranking_flip(answer: Any, scores: torch.Tensor, methods: Sequence[str], baselines: Sequence[str]) -> Feedback:
    """Exercise 6.1: a pair of methods and a pair of metric baselines under which the two methods swap places,
    from scores (K, B, M, N) (higher = more faithful). ``answer`` = (method_a, method_b, baseline_1, baseline_2):
    a beats b under baseline_1 and b beats a under baseline_2. Answer ``None`` when no such flip exists."""
    mean = scores.double().mean((-2, -1))  # (K, B)
    k, b = len(methods), len(baselines)
    exists = any((mean[i, p] - mean[j, p]) * (mean[i, q] - mean[j, q]) < 0
                 for i in range(k) for j in range(i + 1, k) for p in range(b) for q in range(p + 1, b))
    if answer is None:
        return Feedback(not exists, "no two baselines swap any two methods in this run." if not exists else
                        "there is a flip in this run: look for two methods whose score difference changes sign "
                        "between two baselines.")
    try:
        ma, mb, b1, b2 = answer
        i, j, p, q = methods.index(ma), methods.index(mb), baselines.index(b1), baselines.index(b2)
    except (ValueError, TypeError):
        return Feedback(False, f"answer with (method_a, method_b, baseline_1, baseline_2) from methods "
                               f"{list(methods)} and baselines {list(baselines)}")
    if mean[i, p] > mean[j, p] and mean[j, q] > mean[i, q]:
        return Feedback(True, f"{ma} beats {mb} under the {b1} baseline and loses under {b2}.")
    return Feedback(False, f"under these baselines {ma} and {mb} keep (or tie) their order, or {ma} does not win "
                           f"under {b1}. Compare the mean scores of the two methods baseline by baseline.")


def aopc_by_hand(answer: Any, curves: torch.Tensor) -> Feedback:
    """Exercise 6.2: AOPC from MoRF deletion curves (…, L + 1): the mean over steps k = 0…L of f(x⁰) − f(xᵏ)
    (Samek et al., IEEE TNNLS 2017)."""
    from ..evaluation.faithfulness import aopc

    c = curves.double()
    trap = _trap(answer, {"Average over all L + 1 points, k = 0 included (Samek et al.'s 1/(L+1)), not only the L "
                          "perturbed ones.": (c[..., :1] - c)[..., 1:].mean(-1)})
    return close(answer, aopc(curves), "your AOPC", hint=trap or
                 "Subtract each curve from its own first value f(x⁰) and average over the steps.")


def spearman_abs_by_hand(answer: Any, a: torch.Tensor, b: torch.Tensor) -> Feedback:
    """Exercise 7.1: Spearman rank correlation of the absolute values of two maps (H, W), the similarity of
    Adebayo et al.'s randomization tests (helpers.sanity, ``"spearman_abs"``)."""
    from ..evaluation.sanity import similarity

    trap = _trap(answer, {"You ranked the signed maps: the test compares |map| (a map and its negative count as "
                          "the same evidence).": similarity(a, b, "spearman")})
    return close(answer, similarity(a, b, "spearman_abs"), "your Spearman ρ of |map|", rtol=1e-4, hint=trap or
                 "Rank the absolute values of each map's pixels and take the Pearson correlation of the ranks "
                 "(scipy.stats.spearmanr does both).")


def gradcam_pp_weights_by_hand(answer: Any, act: torch.Tensor, grad: torch.Tensor) -> Feedback:
    """Exercise 7.2: GradCAM++'s channel weights (N, K) from a layer's activations and gradients (N, K, h, w),
    closed form of Chattopadhay et al. (WACV 2018) with the logit as score."""
    from ..attribution.positive import gradcam_pp_weights

    trap = _trap(answer, {"You weighted all gradients: GradCAM++ keeps only the positive ones, ReLU(g).":
                          gradcam_pp_weights(act, grad, positive=False),  # Khakzar et al.'s signed variant
                          "That is GradCAM's weight (the mean gradient per channel), not GradCAM++'s.":
                          grad.double().mean((2, 3))})
    return close(answer, gradcam_pp_weights(act, grad), "each of your GradCAM++ weights", rtol=1e-3, atol=1e-6,
                 hint=trap or "w_k = Σ_ij α^k_ij · ReLU(g^k_ij) with α^k_ij = g² / (2g² + Σ_ab A^k_ab · g³), "
                                  "0 where g = 0.")


def budget_closeness(answer: Any, maps: torch.Tensor, b: int) -> Feedback:
    """Exercise 8.1: the closeness of the seed mean over models [0, b) to the held-out half's mean map (models
    [M/2, M)): the Pearson correlation over pixels, averaged over images."""
    from ..attribution.maps import pearson

    half = maps.shape[0] // 2
    if not 1 <= b <= half:
        raise ValueError(f"b={b}: the estimation half has models 0 … {half - 1}, so use 1 ≤ b ≤ {half}")
    ref = maps[half:2 * half].mean(0)
    trap = _trap(answer, {"Your reference contains the estimator's own models: the reference is the mean over "
                          "models M/2 … M − 1 only.": pearson(maps[:b].mean(0), maps.mean(0)).mean()})
    return close(answer, pearson(maps[:b].mean(0), ref).mean(), "your closeness",
                 hint=trap or "Average the b maps first, then correlate with the held-out mean, image by image.")


def noisegrad_variance(answer: Any, sigma: float, w: float, n: int) -> Feedback:
    """Exercise 8.2: the variance of one pixel of the n-sample NoiseGrad gradient of a linear model with weight w
    (σ²w²/n: η ~ N(1, σ²) independent per sample)."""
    trap = _trap(answer, {"That is the variance of one sample: the mean of n independent samples divides it by n.":
                          sigma ** 2 * w ** 2,
                          "The noise multiplies the weight, so its variance scales with w², not w.":
                          sigma ** 2 * abs(w) / n})
    return close(answer, sigma ** 2 * w ** 2 / n, "your variance", hint=trap or "Var(w·η̄) = w² Var(η̄).")


def coverage_se_by_hand(answer: Any, coverage: float, n_sim: int) -> Feedback:
    """Exercise 9.1: the Monte Carlo standard error of a simulated coverage ``coverage`` over ``n_sim`` zoos,
    sqrt(p (1 − p) / n) (each zoo's interval covers or not: a binomial share)."""
    p = float(coverage)
    trap = _trap(answer, {"That is the variance: take its square root.": p * (1 - p) / n_sim,
                          "Divide by the number of simulated zoos inside the square root, not outside.":
                              (p * (1 - p)) ** 0.5 / n_sim})
    return close(answer, (p * (1 - p) / n_sim) ** 0.5, "your standard error", rtol=1e-3, hint=trap or
                 "A coverage is the share of n zoos whose interval covers the truth: a binomial proportion.")


def table_jackknife_by_hand(answer: Any, values: torch.Tensor, level: float = 0.9) -> Feedback:
    """Exercise 9.2: the half-width of the two-way jackknife-t interval of the mean of a (models, images) table:
    t_{min(M, N) − 1} · sqrt(s²(row means) / M + s²(column means) / N) (s² with M − 1, N − 1 in the denominator)."""
    from scipy.stats import norm, t

    from ..evaluation.calibration import table_jackknife

    v = values.double()
    m, n = v.shape
    iv = table_jackknife(v, level)
    q = float(t.ppf((1 + level) / 2, min(m, n) - 1))
    models_only = q * float((v.mean(1).var() / m).sqrt())
    normal = float(norm.ppf((1 + level) / 2)) * (iv.high - iv.point) / q
    trap = _trap(answer, {"You kept only the models' part: the images are a sample too, add s²(column means) / N.":
                          models_only,
                          "With so few models, Student's t (min(M, N) − 1 degrees of freedom), not the normal "
                          "quantile.": normal})
    return close(answer, iv.high - iv.point, "your half-width", rtol=1e-3, hint=trap or
                 "Leave-one-model-out and leave-one-image-out variances add up; multiply the square root by t.")
