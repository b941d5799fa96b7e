"""Chapter 4's sentences: the words and numbers the deep-dream chapter glues into its prose, computed from
:mod:`helpers.evaluation.dream_scores` (Woerl et al., CVPR 2023, ensemble deep dream).
"""
from __future__ import annotations

from typing import Mapping, Sequence
import torch

from ..evaluation.dream_scores import spread
from ..evaluation.intervals import mean_interval


def threshold_phrase(first_steps: Mapping[str, int | None], threshold: float, steps: int) -> str:
    """Says which curves reach ``threshold`` and by when, from :func:`first_step_at` of each curve."""
    reached = {k: v for k, v in first_steps.items() if v is not None}
    n = len(first_steps)
    if len(reached) == n:
        return f"the mean of every curve reaches {threshold:g} by step {max(reached.values())}"
    if not reached:
        return f"no curve's mean reaches {threshold:g} within the {steps} steps"
    return (f"the means of {len(reached)} of the {n} curves reach {threshold:g} (by step {max(reached.values())}); "
            f"the others stay below it for all {steps} steps")


def networks_phrase(indices: Sequence[int], kind: str = "held-out", span: bool = True) -> str:
    """"4 held-out networks (20–23)" or "1 held-out network (network 2)": a group of networks for the prose
    (without the indices in parentheses if not ``span``)."""
    idx = sorted(int(k) for k in indices)
    if not idx:
        raise ValueError("no networks: pass at least one index")
    if len(idx) == 1:
        return f"1 {kind} network" + (f" (network {idx[0]})" if span else "")
    which = f"{idx[0]}–{idx[-1]}" if idx == list(range(idx[0], idx[-1] + 1)) else ", ".join(map(str, idx))
    return f"{len(idx)} {kind} networks" + (f" ({which})" if span else "")


def when_phrase(step: int | None, steps: int) -> str:
    """"at step 5", or "at no step up to step 100" for a :func:`first_step_at` that never happened."""
    return f"at step {step}" if step is not None else f"at no step up to step {steps}"


def blur_phrase(on: float, off: float, blur_every: int) -> str:
    """The sentence on the blur's cost, from :func:`blur_effect` of the ensemble's own logit."""
    if not blur_every or on != on:  # nan: no step was blurred
        return "No step of this run ended with a blur, so the curves show no blur steps."
    verdict = "the blur costs logit" if on < off else "the blur costs no logit here"
    return (f"On the steps that end with a blur (every {blur_every}) the ensemble's own logit changes by {on:+.3g} "
            f"on average, on the other steps by {off:+.3g}: {verdict}.")


def change_phrase(before: float, after: float, digits: int = 3) -> str:
    """"3.21 lower" / "0.412 higher": how ``after`` compares with ``before`` (``digits`` significant digits)."""
    d = after - before
    return f"{abs(d):.{digits}g} {'lower' if d < 0 else 'higher'}"


def transfer_facts(rows: Mapping[str, Mapping[str, float]], gap: Mapping[str, float]) -> dict[str, str | float]:
    """The comparisons the chapter states, from :func:`transfer_rows` and the :func:`per_network` spread of
    (ensemble dream − single dream) under the held-out networks; every word is picked by its comparison.

    Keys: ``own_word`` (single dream under its own weights vs ensemble dream under its members), ``own_reason``
    (why, only when the single dream is higher), ``held_word``
    (ensemble vs single dream under the held-out networks), ``order`` (whether that order flips), ``single_drop``
    and ``ens_drop`` (own score → held-out score), ``drop_word``, ``margin_word``, ``super_sentence`` and
    ``top1_sentence``."""
    so, sh, em, eh, real = (rows[k] for k in ("single_own", "single_held", "ens_members", "ens_held", "real_held"))
    own_higher, held_higher = so["logit"] > em["logit"], gap["mean"] > 0
    drop_s, drop_e = so["logit"] - sh["logit"], em["logit"] - eh["logit"]
    all_hit = min(rows[k]["top1"] for k in ("single_own", "single_others", "ens_members", "ens_held")) >= 1.0
    beats = sh["logit"] > real["logit"] and eh["logit"] > real["logit"]
    return {
        "own_word": "higher" if own_higher else "lower",
        "own_reason": (": it only has to please one network, and can exploit that network's idiosyncrasies"
                       if own_higher else ""),
        "held_word": "higher" if held_higher else "lower",
        "order": "the order flips" if own_higher == held_higher else "the order stays the same",
        "single_drop": change_phrase(so["logit"], sh["logit"]), "ens_drop": change_phrase(em["logit"], eh["logit"]),
        "drop_word": "less" if drop_e < drop_s else "more",
        "margin_word": "higher" if eh["margin"] > sh["margin"] else "lower",
        "super_sentence": ("Both dreams are “super-stimuli”: under the held-out networks they score higher than real "
                           "images of their class." if beats else "Under the held-out networks, not both dreams "
                           "score higher than real images of their class."),
        "top1_sentence": ("Every final dream is classified as its target by every network of the zoo: the top-1 test "
                          "cannot tell the two dreams apart, the logits and margins can." if all_hit else
                          f"Not every dream is classified as its target by every network: the other networks give "
                          f"network 0's dream its target for {rows['single_others']['top1']:.0%} of the "
                          f"(network, class) pairs, the held-out networks the ensemble's dream for "
                          f"{eh['top1']:.0%}."),
    }


def similarity_facts(sim: Mapping[str, torch.Tensor], n_ensemble: int) -> dict[str, str | float | int]:
    """What the chapter says about :func:`dream_similarity`: ``r_<name>_<mean|sd|min|max>`` over classes, the
    half-ensemble size ``half``, the count ``half_n_higher`` (classes where the half-ensembles agree better than
    networks 0 and 1) and the words and sentences picked by those comparisons (the class-mean claim:
    :func:`prototype_facts`)."""
    facts: dict[str, str | float | int] = {f"r_{k}_{stat}": v for k, vals in sim.items()
                                           for stat, v in spread(vals).items()}
    half_better = facts["r_half_mean"] > facts["r_single_mean"]
    facts.update({
        "half": n_ensemble // 2,
        "half_note": (" (with an ensemble this small the halves are single networks: networks 0 and 1 themselves)"
                      if n_ensemble // 2 == 1 else ""),
        "half_n_higher": int((sim["half"] > sim["single"]).sum()),
        "half_word": "more closely" if half_better else "no more closely",
        "repro_sentence": ("Averaging the logits over seeds removes part of the seed from the dream, as averaging "
                           "the gradients removed it from the saliency maps of chapter 1." if half_better else
                           "In this run, averaging the logits over seeds did not make the dream more reproducible."),
    })
    return facts


PROTO_DELTA = 0.05  # "closer to the class mean" needs the interval of the paired difference of r above this


def prototype_facts(proto: Mapping[str, torch.Tensor], n_boot: int = 1000, level: float = 0.9,
                    seed: int = 0, delta: float = PROTO_DELTA) -> dict[str, str | float | int]:
    """Woerl et al.'s reading of ensemble dreams, "closer to what the class looks like", as a test with a control.

    From :func:`helpers.evaluation.dream_scores.prototype_matrices`: the paired difference (J dreamers, B classes)
    of the correlation with the class's mean image, ensemble's dream minus single network j's (``proto_diff``);
    the same difference against the mean image of the *other* classes (``wrong_proto_diff``, the control: a dream
    that is merely smoother or more centred gains there too); and own minus wrong (``proto_specific``). Intervals
    are multi-bootstrap intervals over dreamers and classes. ``proto_verdict`` is "confirmed" only if the interval
    of ``proto_diff`` lies above ``delta`` and that of ``proto_specific`` above 0."""
    ens, singles = proto["ensemble"].double(), proto["singles"].double()
    b = ens.shape[-1]
    own = lambda m: m.diagonal(dim1=-2, dim2=-1)  # noqa: E731
    d_own = own(ens)[None] - own(singles)  # (J, B)
    iv = lambda t: mean_interval(t, n_boot, level, seed)  # noqa: E731
    i_own = iv(d_own)
    word = lambda i: ("closer to" if i.low > delta else "farther from" if i.high < -delta  # noqa: E731
                      else "not distinguishably closer to")
    out: dict[str, str | float | int] = {
        "proto_delta": delta, "level_pct": f"{level:.0%}", "n_dreamers": singles.shape[0],
        "proto_diff": f"{i_own:.3f}", "proto_word": word(i_own), "proto_n_higher": int((d_own > 0).sum()),
        "proto_n_pairs": d_own.numel()}
    if b < 2:
        return {**out, "wrong_proto_diff": "—", "wrong_proto_word": "not measured (one class only)",
                "proto_specific": "—", "proto_verdict": "not confirmed",
                "proto_control_sentence": "With one class dreamt there is no wrong class to control against."}
    wrong = lambda m: (m.sum(-1) - own(m)) / (b - 1)  # noqa: E731  mean over the other classes' means
    d_wrong = wrong(ens)[None] - wrong(singles)
    i_wrong, i_spec = iv(d_wrong), iv(d_own - d_wrong)
    ok = i_own.low > delta and i_spec.low > 0
    return {**out, "wrong_proto_diff": f"{i_wrong:.3f}", "wrong_proto_word": word(i_wrong),
            "proto_specific": f"{i_spec:.3f}", "proto_verdict": "confirmed" if ok else "not confirmed",
            "proto_control_sentence": (
                "The gain is specific to the dream's own class: it is larger than the gain towards the other "
                "classes' means." if i_spec.low > 0 else
                "The gain is not specific to the dream's own class: it is not distinguishably larger than the gain "
                "towards the other classes' means, so whatever brings the ensemble's dream nearer to its class mean "
                "also brings it nearer to the means of other classes.")}
