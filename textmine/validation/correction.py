"""Design-based correction of machine-coded shares with a hand-coded probability sample.

The estimator is the difference (prediction-powered) estimator of a domain
mean under stratified simple random sampling without replacement:

    share_corrected = (sum of machine codes over the domain's N_U sentences
                       + sum over strata h of N_h / n_h * sum over the sample in h of z_i) / N_U

with z_i = (human_i - machine_i) for a validation sentence inside the domain
and 0 outside it, N_h the sentences of stratum h and n_h its validation
sentences. Its variance is the stratified Horvitz-Thompson variance of the
correction term:

    var = sum over h of N_h^2 (1 - n_h / N_h) s_h^2 / n_h / N_U^2

where s_h^2 is the sample variance of z in stratum h, floored at
q_h * p (1 - p) with q_h = N_(U and h) / N_h and p = 1 / (m_h + 2), m_h the
validation sentences of the domain in stratum h: the variance of one
disagreement among m_h + 2 sentences, so that a stratum where the sample
shows no disagreement does not claim a zero-width interval. The 95% interval
is share_corrected +/- 1.96 sqrt(var), clipped to [0, 1].

Every function here is pure numpy; arrays may carry leading batch axes (codes,
simulation replicates) before the sentence axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class DomainEstimate:
    """Corrected share of one domain (arrays shaped like the batch axes of the input).

    `estimable` is False when a stratum holding sentences of the domain has no
    validation sentence at all: the correction is then unknown and every
    value is NaN.
    """

    share: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_validation: int
    estimable: bool


def stratified_total(
    values: np.ndarray,
    strata: np.ndarray,
    stratum_sizes: np.ndarray,
    *,
    variance_floor: np.ndarray | None = None,
    relevant: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Horvitz-Thompson total of `values` and its variance under stratified SRS without replacement.

    Args:
        values: (..., n) the variable on each sampled unit (0 outside a domain).
        strata: (n,) stratum index (0..H-1) of each sampled unit.
        stratum_sizes: (H,) population size N_h of each stratum.
        variance_floor: (H,) lower bound for each stratum's sample variance (default 0).
        relevant: (H,) strata that can hold non-zero values; a relevant stratum
            without sampled units makes the total NaN. Default: every stratum
            with N_h > 0.

    Returns:
        (total, variance), each shaped like `values` without its last axis.
    """
    values = np.asarray(values, dtype=float)
    strata = np.asarray(strata, dtype=int)
    stratum_sizes = np.asarray(stratum_sizes, dtype=float)
    n_strata = len(stratum_sizes)
    if strata.shape != values.shape[-1:]:
        raise ValueError(f"{len(strata)} strata labels for {values.shape[-1]} sampled values")
    if len(strata) and (strata.min() < 0 or strata.max() >= n_strata):
        raise ValueError(f"stratum index outside 0..{n_strata - 1}")
    floor = np.zeros(n_strata) if variance_floor is None else np.asarray(variance_floor, float)
    relevant = stratum_sizes > 0 if relevant is None else np.asarray(relevant, dtype=bool)
    counts = np.bincount(strata, minlength=n_strata)
    if np.any(counts > stratum_sizes):
        raise ValueError("a stratum has more sampled units than its population size")
    batch = values.shape[:-1]
    total = np.zeros(batch)
    variance = np.zeros(batch)
    for h in range(n_strata):
        n_h, size = counts[h], stratum_sizes[h]
        if not relevant[h]:
            continue
        if n_h == 0:
            return np.full(batch, np.nan), np.full(batch, np.nan)
        sample = values[..., strata == h]
        total = total + size * sample.mean(axis=-1)
        s2 = sample.var(axis=-1, ddof=1) if n_h > 1 else np.zeros(batch)
        s2 = np.maximum(s2, floor[h])
        variance = variance + size * size * (1.0 - n_h / size) * s2 / n_h
    return total, variance


def one_event_floor(in_domain_per_stratum: np.ndarray, domain_share: np.ndarray) -> np.ndarray:
    """Smallest variance a stratum may claim: q p (1 - p) with p = 1 / (m + 2).

    m is the domain's validation sentences in the stratum and q the domain's
    share of the stratum: the variance of one event (e.g. one disagreement)
    among m + 2 sentences, so that a stratum whose sample shows no event does
    not claim a zero-width interval.
    """
    p = 1.0 / (np.asarray(in_domain_per_stratum, dtype=float) + 2.0)
    return np.asarray(domain_share, dtype=float) * p * (1.0 - p)


def difference_estimate(
    machine_total: np.ndarray | float,
    domain_size: int,
    differences: np.ndarray,
    in_domain: np.ndarray,
    strata: np.ndarray,
    stratum_sizes: np.ndarray,
    domain_sizes: np.ndarray,
    *,
    z: float = Z_95,
) -> DomainEstimate:
    """Corrected share of a domain: machine codes on every sentence plus the sample's corrections.

    Args:
        machine_total: (...) machine-coded positives among the domain's sentences.
        domain_size: N_U, the domain's sentences.
        differences: (..., n) human minus machine code of every validation sentence.
        in_domain: (n,) whether each validation sentence belongs to the domain.
        strata: (n,) stratum index of each validation sentence.
        stratum_sizes: (H,) sentences per stratum when the sample was drawn (N_h).
        domain_sizes: (H,) the domain's sentences in each stratum (N_(U and h)).
        z: normal quantile of the interval (1.96 for 95%).
    """
    in_domain = np.asarray(in_domain, dtype=bool)
    stratum_sizes = np.asarray(stratum_sizes, dtype=float)
    domain_sizes = np.asarray(domain_sizes, dtype=float)
    machine_total = np.asarray(machine_total, dtype=float)
    n_validation = int(in_domain.sum())
    if domain_size <= 0:
        nan = np.full(machine_total.shape, np.nan)
        return DomainEstimate(nan, nan, nan, nan, n_validation, False)
    z_values = np.asarray(differences, dtype=float) * in_domain
    in_stratum = np.bincount(
        np.asarray(strata, dtype=int), weights=in_domain.astype(float), minlength=len(stratum_sizes)
    )
    share_in_stratum = np.divide(
        domain_sizes, stratum_sizes, out=np.zeros_like(domain_sizes), where=stratum_sizes > 0
    )
    floor = one_event_floor(in_stratum, share_in_stratum)
    correction, variance = stratified_total(
        z_values, strata, stratum_sizes, variance_floor=floor, relevant=domain_sizes > 0
    )
    estimable = bool(np.all(np.isfinite(correction)))
    share = (machine_total + correction) / domain_size
    se = np.sqrt(variance) / domain_size
    low = np.clip(share - z * se, 0.0, 1.0)
    high = np.clip(share + z * se, 0.0, 1.0)
    return DomainEstimate(np.clip(share, 0.0, 1.0), se, low, high, n_validation, estimable)


def stratified_ratio(
    numerator: np.ndarray,
    denominator: np.ndarray | float,
    in_domain: np.ndarray,
    strata: np.ndarray,
    stratum_sizes: np.ndarray,
    *,
    z: float = Z_95,
    bounds: tuple[float, float] | None = (0.0, 1.0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ratio sum(y) / sum(x) over a domain with a linearised 95% interval.

    With x = 1 it is the domain's mean (a share, or with y = machine - human
    the prevalence bias); with y = human and machine it is precision (x =
    machine) or recall (x = human). The linearised variance is floored per
    stratum by `one_event_floor`, with the domain's share of the stratum
    estimated from the sample. The interval is clipped to `bounds` (None:
    not clipped). NaN where the weighted denominator is 0.
    """
    in_domain = np.asarray(in_domain, dtype=bool)
    strata = np.asarray(strata, dtype=int)
    stratum_sizes = np.asarray(stratum_sizes, dtype=float)
    members = np.zeros(len(stratum_sizes), dtype=bool)
    members[np.unique(strata[in_domain])] = True
    y = np.asarray(numerator, dtype=float) * in_domain
    x = np.broadcast_to(np.asarray(denominator, dtype=float), y.shape) * in_domain
    total_y, _ = stratified_total(y, strata, stratum_sizes, relevant=members)
    total_x, _ = stratified_total(x, strata, stratum_sizes, relevant=members)
    positive = total_x > 0
    safe_x = np.where(positive, total_x, 1.0)
    ratio = np.where(positive, total_y / safe_x, np.nan)
    residual = y - np.expand_dims(np.where(positive, ratio, 0.0), -1) * x
    n_h = np.bincount(strata, minlength=len(stratum_sizes))
    m_h = np.bincount(strata, weights=in_domain.astype(float), minlength=len(stratum_sizes))
    floor = one_event_floor(m_h, np.divide(m_h, n_h, out=np.zeros(len(n_h)), where=n_h > 0))
    _, variance = stratified_total(
        residual, strata, stratum_sizes, variance_floor=floor, relevant=members
    )
    se = np.where(positive, np.sqrt(variance) / safe_x, np.nan)
    low, high = ratio - z * se, ratio + z * se
    if bounds is not None:
        low, high = np.clip(low, *bounds), np.clip(high, *bounds)
    return ratio, low, high
