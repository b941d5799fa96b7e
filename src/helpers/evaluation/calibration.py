"""Calibration of the book's intervals and verdicts: how often a chapter's 90 % interval covers the true value, and
how often its verdict rule calls a difference that is not there, at the chapter's own design.

A chapter's design is its statistic, its numbers of models M and images N, its multi-bootstrap interval over
models and images (Sellam et al. 2022; :mod:`helpers.evaluation.intervals`) and its verdict rule ("differ" when the
paired difference's interval excludes 0). :func:`simulate` runs that design on synthetic zoos whose answer is known:

- **maps** (statistic ``"pairwise"``, the mean correlation between the maps of two different models): image i
  has a signal s_i (pixels ~ N(0, 1)) and model m adds noise τ_i κ_m u_mi, where τ_i (how hard the image is) varies
  over images and κ_m (how noisy the seed is) over models. Two models agree on image i with correlation
  ρ = 1 / sqrt((1 + τ_i²κ_m²)(1 + τ_i²κ_m'²)); the truth is its mean over the populations of images and models.
- **tables** (statistic ``"mean"``, the mean of a (models, images) table of scores, as chapters 6 and 7 report):
  v_mn = μ + a_m + b_n + e_mn with random model, image and residual effects; the truth is μ.

The null for the verdict rule is two methods of equal truth on the same models and images (independent noise); the
alternative doubles one method's noise. A design passes when its coverage is at least :data:`MIN_COVERAGE` and
its false-verdict rate at most :data:`MAX_FALSE`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import settings
from ..data.files import atomic_write
from .agreement import pairwise_difference, pairwise_interval, pairwise_jackknife
from .intervals import Interval, mean_interval, mean_jackknife, student_quantile

MIN_COVERAGE = 0.85  # of the nominal 90 % intervals
MAX_FALSE = 0.10  # false "differ" verdicts under the null
STATISTICS = ("pairwise", "mean")
INTERVALS = ("bootstrap", "jackknife-t")  # the percentile multi-bootstrap; the two-way jackknife with Student's t


@dataclass(frozen=True)
class Design:
    """What a chapter computes an interval for: ``statistic`` over ``n_models`` models and ``n_images`` images."""

    name: str
    statistic: str
    n_models: int
    n_images: int
    level: float = 0.9
    n_boot: int = 200
    interval: str = "bootstrap"

    def __post_init__(self) -> None:
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic={self.statistic!r}: use one of {', '.join(STATISTICS)}")
        if self.interval not in INTERVALS:
            raise ValueError(f"interval={self.interval!r}: use one of {', '.join(INTERVALS)}")
        if self.n_models < 2 or self.n_images < 1:
            raise ValueError(f"{self.name}: a design needs at least 2 models and 1 image")


@dataclass(frozen=True)
class Calibration:
    """The simulated behaviour of a design: coverage of its intervals, false verdicts under the null, power."""

    design: Design
    coverage: float
    false_verdicts: float
    power: float
    n_sim: int

    @property
    def coverage_se(self) -> float:
        """Monte Carlo standard error of :attr:`coverage` (binomial over ``n_sim`` zoos)."""
        return math.sqrt(self.coverage * (1 - self.coverage) / self.n_sim)

    @property
    def false_se(self) -> float:
        """Monte Carlo standard error of :attr:`false_verdicts`."""
        return math.sqrt(self.false_verdicts * (1 - self.false_verdicts) / self.n_sim)

    def ok(self, min_coverage: float = MIN_COVERAGE, max_false: float = MAX_FALSE) -> bool:
        return self.coverage >= min_coverage and self.false_verdicts <= max_false

    def problem(self, fix: str = "use more images or models") -> str | None:
        """One line on what fails and ``fix``, or None."""
        if self.ok():
            return None
        d = self.design
        return (f"{d.name} (M={d.n_models}, N={d.n_images}): coverage {self.coverage:.2f} ± {self.coverage_se:.2f}"
                f" of the {d.level:.0%} {d.interval} intervals (needs ≥ {MIN_COVERAGE}), false verdicts "
                f"{self.false_verdicts:.2f} (needs ≤ {MAX_FALSE}): {fix}")


# the synthetic populations: image difficulty τ ~ U(TAU), seed noisiness κ = exp(KAPPA · z), pixels per map
TAU = (0.5, 2.0)
KAPPA = 0.3
PIXELS = 256


def _image_noise(n: int, gen: torch.Generator) -> torch.Tensor:
    return TAU[0] + (TAU[1] - TAU[0]) * torch.rand(n, generator=gen, dtype=torch.float64)


def _model_noise(m: int, gen: torch.Generator) -> torch.Tensor:
    return torch.exp(KAPPA * torch.randn(m, generator=gen, dtype=torch.float64))


@functools.lru_cache(maxsize=4)
def true_pairwise(n: int = 500_000, seed: int = 12345, pixels: bool = False, chunk: int = 20_000) -> float:
    """The population mean of the statistic itself: the Pearson correlation of two models' maps of one image, over
    images and pairs of different models, by Monte Carlo over ``n`` independent (image, model, model) draws
    (standard error about 3e-4 at the default n, far below any interval's width). With ``pixels`` the maps are
    drawn pixel by pixel (as :func:`synthetic_maps`; slow), else their correlation is drawn from its exact law
    (:func:`_corr`). The asymptotic ρ = 1 / sqrt((1 + τ²κ²)(1 + τ²κ'²)) is about 0.02 higher at 256 pixels: a
    correlation of finite maps is a biased estimate of ρ, and the chapters report the correlation, so the
    correlation's mean is the truth."""
    gen = torch.Generator().manual_seed(seed)
    if not pixels:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sigma = _image_noise(n, gen)[:, None, None] * torch.stack([_model_noise(n, gen), _model_noise(n, gen)],
                                                                      -1)[:, None]
            r = torch.distributions.Chi2(torch.tensor(float(PIXELS - 1), dtype=torch.float64)).sample((n, 1)).sqrt()
            return float(_corr(sigma, r)[..., 0, 1].mean())
    total = 0.0
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        s = torch.randn(k, PIXELS, generator=gen, dtype=torch.float64)
        tau = _image_noise(k, gen)[:, None]
        a = s + tau * _model_noise(k, gen)[:, None] * torch.randn(k, PIXELS, generator=gen, dtype=torch.float64)
        b = s + tau * _model_noise(k, gen)[:, None] * torch.randn(k, PIXELS, generator=gen, dtype=torch.float64)
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        total += float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).sum())
    return total / n


def synthetic_maps(n_models: int, n_images: int, gen: torch.Generator, noise_scale: float = 1.0,
                   signal: torch.Tensor | None = None, tau: torch.Tensor | None = None,
                   kappa: torch.Tensor | None = None) -> torch.Tensor:
    """Channel-summed maps (M, N, 16, 16) of the synthetic zoo; ``signal``, ``tau`` and ``kappa`` may be shared with another
    method on the same images and models."""
    side = math.isqrt(PIXELS)
    s = torch.randn(n_images, PIXELS, generator=gen, dtype=torch.float64) if signal is None else signal
    t = _image_noise(n_images, gen) if tau is None else tau
    k = _model_noise(n_models, gen) if kappa is None else kappa
    u = torch.randn(n_models, n_images, PIXELS, generator=gen, dtype=torch.float64)
    maps = s[None] + noise_scale * t[None, :, None] * k[:, None, None] * u
    return maps.float().view(n_models, n_images, side, side)


def synthetic_table(n_models: int, n_images: int, gen: torch.Generator, mu: float = 0.0) -> torch.Tensor:
    """A (models, images) table of the synthetic zoo: v = μ + a_m + b_n + e_mn (a, b with s.d. 0.5, e with 1)."""
    return _tables(n_models, n_images, gen, mu)[0]


def _tables(n_models: int, n_images: int, gen: torch.Generator, mu: float = 0.0, shared=None):
    """A (models, images) table v = μ + a_m + b_n + e_mn; ``shared`` (a, b) pairs two methods' tables."""
    a, b = shared if shared is not None else (0.5 * torch.randn(n_models, 1, generator=gen, dtype=torch.float64),
                                              0.5 * torch.randn(1, n_images, generator=gen, dtype=torch.float64))
    return mu + a + b + torch.randn(n_models, n_images, generator=gen, dtype=torch.float64), (a, b)


def _one(design: Design, gen: torch.Generator, seed: int) -> tuple[bool, bool, bool]:
    """One synthetic zoo through the chapters' own interval functions, one at a time (the reference that
    :func:`simulate` vectorizes; :func:`simulate_loop` runs it): (interval covers the truth, null verdict says
    "differ", alternative verdict says "differ")."""
    m, n, lv, nb = design.n_models, design.n_images, design.level, design.n_boot
    if design.statistic == "pairwise":
        s = torch.randn(n, PIXELS, generator=gen, dtype=torch.float64)
        tau, kappa = _image_noise(n, gen), _model_noise(m, gen)
        a = synthetic_maps(m, n, gen, signal=s, tau=tau, kappa=kappa)
        b = synthetic_maps(m, n, gen, signal=s, tau=tau, kappa=kappa)
        c = synthetic_maps(m, n, gen, 2.0, signal=s, tau=tau, kappa=kappa)
        if design.interval == "jackknife-t":
            iv: Interval = pairwise_jackknife(a, level=lv)
            null, alt = pairwise_jackknife(a, b, lv), pairwise_jackknife(a, c, lv)
        else:
            iv = pairwise_interval(a, nb, lv, seed)
            null, alt = pairwise_difference(a, b, nb, lv, seed), pairwise_difference(a, c, nb, lv, seed)
        truth = true_pairwise()
    else:
        a, shared = _tables(m, n, gen)
        b, _ = _tables(m, n, gen, shared=shared)
        c, _ = _tables(m, n, gen, mu=1.0, shared=shared)
        if design.interval == "jackknife-t":
            iv, null, alt = table_jackknife(a, lv), table_jackknife(a - b, lv), table_jackknife(c - a, lv)
        else:
            iv = mean_interval(a, nb, lv, seed)
            null, alt = mean_interval(a - b, nb, lv, seed), mean_interval(c - a, nb, lv, seed)
        truth = 0.0
    return iv.low <= truth <= iv.high, null.excludes(0.0), alt.excludes(0.0)


def simulate_loop(design: Design, n_sim: int = 200, seed: int = 0) -> Calibration:
    """:func:`simulate` one zoo at a time through the chapters' interval functions (slow; the benchmark's and the
    tests' reference: the same model, other random draws, so the same rates up to Monte Carlo error)."""
    gen = torch.Generator().manual_seed(seed)
    hits = torch.tensor([_one(design, gen, seed + k) for k in range(n_sim)], dtype=torch.float64)
    cover, false, power = hits.mean(0).tolist()
    return Calibration(design, cover, false, power, n_sim)


# ----------------------------------------------------------------------- many zoos at once (batched tensors)

def table_jackknife(values: torch.Tensor, level: float = 0.9) -> Interval:
    """:func:`helpers.evaluation.intervals.mean_jackknife`, the interval the chapters use (one implementation)."""
    return mean_jackknife(values, level)


def _table_jack(v: torch.Tensor, level: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Point and half-width of :func:`table_jackknife` for tables (S, M, N)."""
    m, n = v.shape[-2:]
    if m < 2 or n < 2:
        raise ValueError(f"a jackknife over models and images needs ≥ 2 models and ≥ 2 images, got {m} × {n}")
    var = v.mean(-1).var(-1) / m + v.mean(-2).var(-1) / n
    return v.mean((-2, -1)), student_quantile(level, min(m, n) - 1) * var.sqrt()


def _corr(sigma: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Per-image correlation matrices (S, N, M, M) of synthetic maps x_m = s + σ_m u_m (``sigma`` (S, N, M), the
    noise scale of model m on image n; ``r`` (S, N), the norm of the centred signal), drawn from their exact
    distribution without drawing pixels. Centring leaves D = PIXELS − 1 independent Gaussian dimensions; rotated so
    that the signal is r e₁, u_m = (z_m, v_m) with z_m ~ N(0, 1) and Gram(v) ~ Wishart(D − 1, I) (Bartlett), so
    x_m = (r + σ_m z_m, σ_m A_m) with A the Bartlett factor of Gram(v): M² numbers per image instead of M
    maps of PIXELS pixels (a tenth of the work; the same law as :func:`synthetic_maps`, which :func:`_one` uses)."""
    s, n, m = sigma.shape
    x = torch.randn(s, n, m, m + 1, dtype=torch.float64).tril(0)  # column 0: z; columns 1…: Bartlett's A
    df = PIXELS - 2 - torch.arange(m, dtype=torch.float64)  # Bartlett: the i-th diagonal² of A ~ χ²(D − 1 − i)
    x.diagonal(offset=1, dim1=-2, dim2=-1).copy_(torch.distributions.Chi2(df).sample((s, n)).sqrt())
    x *= sigma[..., None]
    x[..., 0] += r[..., None]  # row m = coordinates of x_m: (r + σ_m z_m, σ_m A_m)
    x /= x.norm(dim=-1, keepdim=True)
    return x @ x.transpose(-1, -2)


def _pair_jack(corr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched :func:`helpers.evaluation.agreement._jackknife_parts`: point (S,), leave-one-model-out (S, M) and
    leave-one-image-out (S, N) values of the mean pairwise correlation."""
    n, m = corr.shape[1], corr.shape[-1]
    diag = torch.diagonal(corr, dim1=-2, dim2=-1)  # (S, N, M)
    off = corr.sum((-2, -1)) - diag.sum(-1)  # (S, N)
    per_image = off / (m * (m - 1))
    loo_m = ((off[..., None] - 2 * (corr.sum(-1) - diag)) / ((m - 1) * (m - 2))).mean(1)
    loo_i = (per_image.sum(-1, keepdim=True) - per_image) / max(1, n - 1)
    return per_image.mean(-1), loo_m, loo_i


def _pair_jack_interval(ca: torch.Tensor, cb: torch.Tensor | None, level: float):
    m, n = ca.shape[-1], ca.shape[1]
    p, lm, li = _pair_jack(ca)
    if cb is not None:
        pb, lmb, lib = _pair_jack(cb)
        p, lm, li = p - pb, lm - lmb, li - lib
    var = ((m - 1) / m * ((lm - lm.mean(-1, keepdim=True)) ** 2).sum(-1)
           + (n - 1) / n * ((li - li.mean(-1, keepdim=True)) ** 2).sum(-1))
    half = student_quantile(level, min(m, n) - 1) * var.sqrt()
    return p, p - half, p + half


def _counts(s: int, b: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """Multi-bootstrap draws as counts (S, B, k): how often each of k models (or images) is drawn."""
    idx = torch.randint(k, (s, b, k), generator=gen)
    return torch.zeros(s, b, k, dtype=torch.float64).scatter_add_(-1, idx, torch.ones(s, b, k, dtype=torch.float64))


def _pair_reps(corr: torch.Tensor, w: torch.Tensor, wi: torch.Tensor) -> torch.Tensor:
    """Multi-bootstrap replicates (S, B) of the mean pairwise correlation: per draw b the mean over images (drawn
    ``wi`` (S, B, N) times) of the mean correlation over pairs of different drawn models (``w`` (S, B, M)), as
    :func:`helpers.evaluation.agreement.pairwise_interval` computes it; NaN for a draw without two different
    models. One batched matrix product: Σ_n wi_bn Σ_ij w_bi w_bj C_nij = Σ_ij w_bi w_bj (wi C)_bij."""
    s, n, m, _ = corr.shape
    w32 = w.float()  # single precision for the one large product (sums of at most N·M² terms of size ≤ 1)
    weighted = torch.bmm(wi.float(), corr.float().reshape(s, n, m * m)).view(s, -1, m, m)  # (S, B, M, M)
    quad = (weighted @ w32[..., None]).squeeze(-1).mul_(w32).sum(-1)
    own = (w32 * w32 * torch.diagonal(weighted, dim1=-2, dim2=-1)).sum(-1)
    pairs = w.sum(-1) ** 2 - (w * w).sum(-1)
    out = (quad - own).double() / pairs / n
    return out.masked_fill_(pairs == 0, float("nan"))  # a draw of one model only: no pair


def _pair_point(corr: torch.Tensor) -> torch.Tensor:
    m = corr.shape[-1]
    diag = torch.diagonal(corr, dim1=-2, dim2=-1).sum(-1)
    return ((corr.sum((-2, -1)) - diag) / (m * (m - 1))).mean(-1)


def _percentile(point: torch.Tensor, reps: torch.Tensor, level: float):
    """Batched :func:`helpers.evaluation.intervals.percentile`: ends (S,) of replicates (S, B), NaN dropped."""
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    low, high = torch.nanquantile(reps, q, dim=1)
    return point, low, high


def _pair_boot(ca: torch.Tensor, cb: torch.Tensor | None, wm: torch.Tensor, wi: torch.Tensor, level: float,
               reps_a: torch.Tensor | None = None):
    reps = _pair_reps(ca, wm, wi) if reps_a is None else reps_a
    point = _pair_point(ca)
    if cb is not None:
        reps, point = reps - _pair_reps(cb, wm, wi), point - _pair_point(cb)
    return _percentile(point, reps, level)


def _table_boot(v: torch.Tensor, wm: torch.Tensor, wi: torch.Tensor, level: float):
    m, n = v.shape[-2:]
    return _percentile(v.mean((-2, -1)), (torch.bmm(wm, v) * wi).sum(-1) / (m * n), level)


def _batch(design: Design, s: int, gen: torch.Generator) -> torch.Tensor:
    """``s`` synthetic zoos of ``design`` at once: (s, 3) booleans (covers, null "differ", alternative "differ"),
    with the same model and draws as :func:`_one` (each zoo its own bootstrap draws)."""
    m, n, lv, nb = design.n_models, design.n_images, design.level, design.n_boot
    f64 = {"generator": gen, "dtype": torch.float64}
    if design.statistic == "pairwise":
        tau = TAU[0] + (TAU[1] - TAU[0]) * torch.rand(s, n, 1, **f64)
        kappa = torch.exp(KAPPA * torch.randn(s, 1, m, **f64))
        r = torch.distributions.Chi2(torch.tensor(float(PIXELS - 1), dtype=torch.float64)).sample((s, n)).sqrt()
        ca, cb, cc = (_corr(scale * tau * kappa, r) for scale in (1.0, 1.0, 2.0))
        truth = true_pairwise()
        if design.interval == "jackknife-t":
            ivs = [_pair_jack_interval(ca, None, lv), _pair_jack_interval(ca, cb, lv), _pair_jack_interval(ca, cc, lv)]
        else:
            wm, wi = _counts(s, nb, m, gen), _counts(s, nb, n, gen)
            ra = _pair_reps(ca, wm, wi)
            ivs = [_pair_boot(ca, None, wm, wi, lv, ra), _pair_boot(ca, cb, wm, wi, lv, ra),
                   _pair_boot(ca, cc, wm, wi, lv, ra)]
    else:
        shared = 0.5 * torch.randn(s, m, 1, **f64) + 0.5 * torch.randn(s, 1, n, **f64)
        a, b, c = (mu + shared + torch.randn(s, m, n, **f64) for mu in (0.0, 0.0, 1.0))
        truth = 0.0
        if design.interval == "jackknife-t":
            ivs = []
            for v in (a, a - b, c - a):
                p, h = _table_jack(v, lv)
                ivs.append((p, p - h, p + h))
        else:
            wm, wi = _counts(s, nb, m, gen), _counts(s, nb, n, gen)
            ivs = [_table_boot(v, wm, wi, lv) for v in (a, a - b, c - a)]
    (_, lo, hi), (_, nlo, nhi), (_, alo, ahi) = ivs
    covers = (lo <= truth) & (truth <= hi)
    return torch.stack([covers, (nlo > 0) | (nhi < 0), (alo > 0) | (ahi < 0)], 1)


def simulate(design: Design, n_sim: int = 200, seed: int = 0, chunk: int | None = None,
             cache: bool = True) -> Calibration:
    """Run ``design`` on ``n_sim`` synthetic zoos: the share of intervals that cover the truth, of null
    differences called real, and of real differences (the alternative) found. Many zoos at once (batched tensors,
    ``chunk`` zoos per batch, chosen to keep a batch's maps near 64 MB); deterministic for a given ``seed``.

    With ``cache`` the result is kept in ``<cache>/calibration/`` under a key of the design, ``n_sim``, ``seed``
    and this module's source, so the chapters and the calibration page that ask for the same design simulate it
    once (a missing, unreadable or read-only cache only costs the simulation)."""
    path = _cache_path(design, n_sim, seed) if cache else None
    if path is not None and path.is_file():
        try:
            got = json.loads(path.read_text())
            return Calibration(design, got["coverage"], got["false_verdicts"], got["power"], n_sim)
        except (OSError, ValueError, KeyError):
            pass  # a bad entry is simulated again and replaced
    result = _simulate(design, n_sim, seed, chunk)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, json.dumps({"coverage": result.coverage, "false_verdicts": result.false_verdicts,
                                           "power": result.power}).encode())
        except OSError:
            pass
    return result


def _cache_path(design: Design, n_sim: int, seed: int) -> Path | None:
    try:
        root = settings.cache_root()
    except (OSError, ValueError):
        return None
    source = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    fields = (design.statistic, design.n_models, design.n_images, design.level, design.n_boot, design.interval)
    key = hashlib.sha256(repr((fields, n_sim, seed, source)).encode()).hexdigest()[:24]
    return root / "calibration" / f"{key}.json"


def _simulate(design: Design, n_sim: int, seed: int, chunk: int | None) -> Calibration:
    if design.interval == "jackknife-t" and design.statistic == "pairwise" and (design.n_models < 3
                                                                               or design.n_images < 2):
        raise ValueError(f"{design.name}: a jackknife over models and images needs ≥ 3 models and ≥ 2 images")
    if design.interval == "jackknife-t" and (design.n_models < 2 or design.n_images < 2):
        raise ValueError(f"{design.name}: a jackknife over models and images needs ≥ 2 models and ≥ 2 images")
    gen = torch.Generator().manual_seed(seed)
    m, n, b = design.n_models, design.n_images, design.n_boot
    per_zoo = 8 * (4 * n * m * m + b * m * m if design.statistic == "pairwise" else 4 * m * n + b * n) + 8 * b * (m + n)
    chunk = chunk or max(1, min(n_sim, int(64e6 // per_zoo)))
    with torch.random.fork_rng(devices=[]):  # the exact draws of _corr use torch's own generator: seeded here
        torch.manual_seed(seed)
        hits = torch.cat([_batch(design, min(chunk, n_sim - k), gen) for k in range(0, n_sim, chunk)])
    cover, false, power = hits.double().mean(0).tolist()
    return Calibration(design, cover, false, power, n_sim)


def check(results: list[Calibration], fixes: list[str] | None = None) -> None:
    """Raise ``ValueError`` naming every design that fails (coverage or false verdicts), each with its fix
    (``fixes``, one per result; default "use more images or models")."""
    fixes = fixes or ["use more images or models"] * len(results)
    bad = [r.problem(f) for r, f in zip(results, fixes) if not r.ok()]
    if bad:
        raise ValueError("designs that fail calibration: " + "; ".join(bad))
