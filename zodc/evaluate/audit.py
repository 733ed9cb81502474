"""``zodc audit``: an empirical privacy audit of the step mechanism and of the released table.

Two independent checks, one JSON (``docs/audit.md`` says what each certifies and what it cannot):

1. **White-box canary audit of the step mechanism** (Steinke, Nasr & Jagielski 2023, "Privacy
   Auditing with One (1) Training Run", arXiv:2305.08846). ``m`` canaries, each included
   independently with probability 1/2 (the secret ``S``). A canary is a record whose per-step
   vector has L2 norm exactly ``C`` (worst case for the clipped sum) along its own fixed random
   direction ``u_i``. The canaries go through ``T`` steps of *the mechanism the real step uses*
   (:func:`step_noisy_sums`: Poisson mask, clip, grid sum, exact rounded-Gaussian noise), with
   the noise multiplier the real calibration gives for those ``T`` steps at the claimed
   ``(epsilon, delta)``. The auditor sees the per-step noisy sums (white box), scores canary ``i``
   by ``sum_t <noisy_sum_t, u_i>``, guesses "in" for the top ``k`` scores and "out" for the bottom
   ``k``, abstains on the rest, and converts the number of correct guesses into a lower bound on
   epsilon (:func:`epsilon_lower_bound`, the paper's Theorem 5.2 / its p-value algorithm).

   What ``epsilon_claimed`` is: the RDP accountant's epsilon at ``delta`` of
   ``SelfComposedEvent(PoissonSampledEvent(p, GaussianEvent(sigma)), T)`` with the audit's
   ``p`` (1 by default: every canary is in every step, which gives the audit its power) and the
   calibrated ``sigma``: i.e. ``T`` adaptive runs of the step's Gaussian mechanism on the clipped
   sum. It is what the ledger's ``zero_order_steps`` entry would claim for those ``p`` and ``T``.

2. **Black-box membership inference on the released table.** The cohort is split (seeded,
   stratified) into members and non-members; the members are condensed with
   :class:`zodc.Condenser`; each record is scored by its distance to the closest synthetic row of
   its own class in encoded units (closer = more likely a member). ``mia_auc`` is the ROC AUC with
   members positive, per seed and averaged. A DOMIAS-style density ratio is not used: a KDE of 20
   synthetic rows in 30 encoded dimensions is no density estimate.

The mechanism under audit is one small function, :func:`step_noisy_sums`; everything else is the
auditor's side.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from typing import Any, Sequence

import numpy as np
from scipy import stats

from zodc.errors import ConfigError, DataError

__all__ = [
    "add_audit_parser", "audit_command", "canary_audit", "epsilon_lower_bound", "guess_grid",
    "membership_inference", "p_value", "step_noisy_sums", "write_json_atomic",
]

DEFAULT_CANARIES = 5000
DEFAULT_STEPS = 300  # the condenser's default number of steps
DEFAULT_MIA_SEEDS = 3
_MIN_GUESSES_PER_SIDE = 16


# ----------------------------------------------------------------------------- the bound


def p_value(num_canaries: int, num_guesses: int, num_correct: int, epsilon: float, delta: float) -> float:
    """Probability of ``>= num_correct`` correct guesses out of ``num_guesses`` if the mechanism is
    ``(epsilon, delta)``-DP (Steinke, Nasr & Jagielski 2023, Theorem 5.2 and the p-value code of
    their appendix)::

        p = f(v) + 2 m delta max_{i = 1..v} (f(v - i) - f(v)) / i,   f(w) = P[Binomial(r, q) >= w],

    with ``q = e^eps / (1 + e^eps)``, ``m`` canaries, ``r`` guesses and ``v`` correct ones. The tail
    ``f(v)`` is scipy's binomial survival function; ``f(v - i) - f(v) = P[v - i <= W < v]`` is a
    running sum of binomial pmfs from ``v - 1`` down, so small terms are not lost to cancellation.

    Returns:
      The p-value, capped at 1.
    """
    m, r, v = int(num_canaries), int(num_guesses), int(num_correct)
    if not 0 <= v <= r <= m:
        raise ConfigError(f"need 0 <= correct <= guesses <= canaries. Got {v}, {r}, {m}.")
    if not epsilon >= 0 or not 0 <= delta <= 1:
        raise ConfigError(f"need epsilon >= 0 and delta in [0, 1]. Got {epsilon}, {delta}.")
    if v == 0:
        return 1.0
    q = 1.0 / (1.0 + math.exp(-min(float(epsilon), 700.0)))
    beta = float(stats.binom.sf(v - 1, r, q))
    below = np.cumsum(stats.binom.pmf(np.arange(v - 1, -1, -1), r, q))  # P[v - i <= W < v], i = 1..v
    alpha = float(np.max(below / np.arange(1, v + 1)))
    return min(1.0, beta + 2.0 * m * float(delta) * alpha)


def epsilon_lower_bound(num_canaries: int, num_guesses: int, num_correct: int, delta: float,
                        confidence: float = 0.95, *, tolerance: float = 1e-6) -> float:
    """The largest epsilon rejected at ``confidence``: the mechanism is not ``(epsilon, delta)``-DP.

    As the paper's search: ``epsilon_hi`` grows by 1 until the p-value reaches ``1 - confidence``,
    then bisection keeps ``p_value(epsilon_lo) < 1 - confidence <= p_value(epsilon_hi)``. Rejecting
    ``epsilon_lo`` rejects every smaller epsilon too (an ``(eps', delta)``-DP mechanism is
    ``(eps, delta)``-DP for every ``eps >= eps'``), so the bound is sound even where the p-value is
    not monotone in epsilon.

    Returns:
      ``epsilon_lo`` >= 0 (0 when not even epsilon = 0 is rejected).
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"`confidence` must be in (0, 1). Got {confidence}.")
    level = 1.0 - confidence
    if p_value(num_canaries, num_guesses, num_correct, 0.0, delta) >= level:
        return 0.0
    low, high = 0.0, 1.0
    while p_value(num_canaries, num_guesses, num_correct, high, delta) < level:
        low, high = high, high + 1.0
        if high > 700:  # pragma: no cover - the tail reaches 1 long before
            return low
    while high - low > tolerance:
        middle = 0.5 * (low + high)
        if p_value(num_canaries, num_guesses, num_correct, middle, delta) < level:
            low = middle
        else:
            high = middle
    return float(low)


def guess_grid(num_canaries: int) -> list[int]:
    """Guesses per side tried by default: ``m/2, m/4, ...`` down to 16 (at least one value).

    Fixed before the run (public), and the bound over them is Bonferroni-corrected, so picking the
    best ``k`` afterwards is no multiple-testing error: ``m/2`` wins when the mechanism leaks
    (every guess right), a small ``k`` when only the extreme scores are informative."""
    grid, k = [], num_canaries // 2
    while k >= _MIN_GUESSES_PER_SIDE:
        grid.append(k)
        k //= 2
    return grid or [max(1, num_canaries // 2)]


# ----------------------------------------------------------------------------- the mechanism under audit


def _grid_mechanism():
    """``(grid_noisy_sum, rounded_gaussian, GRID_BITS)`` when the exact-noise step has landed, else None."""
    try:
        from zodc.privacy.mechanisms import grid_noisy_sum
        from zodc.privacy.noise import GRID_BITS, rounded_gaussian
    except ImportError:  # pragma: no cover - before the exact-noise mechanism existed
        return None
    return grid_noisy_sum, rounded_gaussian, GRID_BITS


def mechanism_name() -> str:
    return "zodc.privacy.mechanisms.grid_noisy_sum" if _grid_mechanism() is not None \
        else "zodc.privacy.mechanisms.noisy_clipped_sum"


def step_noisy_sums(values: np.ndarray, inclusion: np.ndarray, l2_norm_clip: float, noise_multiplier: float,
                    steps: int, sampling_probability: float, seed: int) -> np.ndarray:
    """The step's DP mechanism, run ``steps`` times on the records ``values[inclusion]``: what the
    white-box auditor observes.

    Each step is exactly what :func:`zodc.condense.zero_order_condenser`'s step does to its
    per-record differences: a Poisson mask (:func:`zodc.privacy.mechanisms.poisson_mask`, with
    probability ``sampling_probability``) over the included records, then the Gaussian mechanism
    on the clipped sum with noise std ``noise_multiplier * C`` — :func:`grid_noisy_sum` with
    ``rounded_gaussian(rng, noise_multiplier * 2**GRID_BITS, (q,))`` noise (before that mechanism
    existed: :func:`noisy_clipped_sum`). Switch the mechanism here and nowhere else.

    Args:
      values: ``(n, q)`` float32 per-record vectors (the canaries).
      inclusion: ``(n,)`` bool, which records are in the data set.
      l2_norm_clip: ``C``.
      noise_multiplier: ``sigma`` (0: the deliberately broken mechanism).
      steps: ``T``.
      sampling_probability: ``p`` of the Poisson mask (1: every included record in every step).
      seed: seeds the masks and the noise.

    Returns:
      ``(T, q)`` float64 noisy sums.
    """
    import jax
    import jax.numpy as jnp

    from zodc.privacy import mechanisms

    values = jnp.asarray(values, jnp.float32)
    inclusion = jnp.asarray(inclusion, bool)
    n, q = values.shape
    seeds = np.random.SeedSequence(seed)
    noise_seed, mask_seed = seeds.spawn(2)
    key = jax.random.key(int(mask_seed.generate_state(1)[0]))
    full = float(sampling_probability) >= 1.0
    if not full:
        masks = jax.vmap(lambda k: mechanisms.poisson_mask(k, n, sampling_probability))(
            jax.random.split(key, steps)) & inclusion[None, :]
    grid = _grid_mechanism()
    if grid is not None:
        grid_noisy_sum, rounded_gaussian, grid_bits = grid
        rng = np.random.Generator(np.random.PCG64(noise_seed))
        noise = jnp.asarray(rounded_gaussian(rng, float(noise_multiplier) * 2.0**grid_bits, (steps, q)), jnp.int32)
        if full:  # one mask for all steps: vmap over the noise only (the clipped sum is computed once)
            run = jax.jit(jax.vmap(grid_noisy_sum, in_axes=(None, None, None, 0)))
            out = run(values, inclusion, l2_norm_clip, noise)
        else:
            run = jax.jit(lambda v, ms, c, ns: jax.lax.map(lambda a: grid_noisy_sum(v, a[0], c, a[1]), (ms, ns)))
            out = run(values, masks, l2_norm_clip, noise)
    else:  # pragma: no cover - the float32 mechanism, before the exact-noise one landed
        noise_keys = jax.random.split(jax.random.key(int(noise_seed.generate_state(1)[0])), steps)
        if full:
            run = jax.jit(jax.vmap(mechanisms.noisy_clipped_sum, in_axes=(0, None, None, None, None)))
            out = run(noise_keys, values, inclusion, l2_norm_clip, noise_multiplier)
        else:
            run = jax.jit(lambda ks, v, ms, c, s: jax.lax.map(
                lambda a: mechanisms.noisy_clipped_sum(a[0], v, a[1], c, s), (ks, ms)))
            out = run(noise_keys, values, masks, l2_norm_clip, noise_multiplier)
    return np.asarray(out, np.float64)


# ----------------------------------------------------------------------------- the canary audit


def _step_event(sampling_probability: float, steps: int):
    from zodc.privacy.events import GaussianEvent, PoissonSampledEvent, SelfComposedEvent

    return lambda sigma: SelfComposedEvent(PoissonSampledEvent(sampling_probability, GaussianEvent(sigma)), steps)


def _canary_directions(rng: np.random.Generator, num_canaries: int, kind: str) -> np.ndarray:
    """``(m, q)`` unit rows, mutually orthogonal (so one canary's score carries no other's signal).

    ``axes``: a random signed coordinate axis each (``q = m``): the worst case of the implemented
    mechanism, whose per-coordinate truncation onto the grid shortens a canary by at most one grid
    unit (2^-10 C); a dense direction loses about ``0.5 sum_k |u_k|`` units (3 % of C at q = 5000).
    ``orthogonal``: dense, Haar-random orthonormal rows (QR; O(m^3), for small m). The ideal
    Gaussian mechanism's noise is isotropic, so both have the same ideal privacy loss."""
    if kind == "axes":
        directions = np.zeros((num_canaries, num_canaries), np.float32)
        directions[np.arange(num_canaries), rng.permutation(num_canaries)] = rng.choice([-1.0, 1.0], num_canaries)
        return directions
    if kind == "orthogonal":
        gaussian = rng.standard_normal((num_canaries, num_canaries))
        q, r = np.linalg.qr(gaussian)
        return (q * np.sign(np.diag(r))).T.astype(np.float32)
    raise ConfigError(f"`directions` must be 'axes' or 'orthogonal'. Got {kind!r}.")


def canary_audit(epsilon: float, delta: float = 1e-5, *, canaries: int = DEFAULT_CANARIES, steps: int = DEFAULT_STEPS,
                 confidence: float = 0.95, l2_norm_clip: float = 1.0, sampling_probability: float = 1.0,
                 guesses: int | None = None, no_noise: bool = False, directions: str = "axes",
                 seed: int = 0) -> dict[str, Any]:
    """White-box one-run canary audit of the step mechanism at a claimed ``(epsilon, delta)``.

    Args:
      epsilon, delta: the claim; ``sigma`` is calibrated as a fit's steps are, by
        :func:`zodc.privacy.calibration.calibrate_noise_multiplier_pld` (the tighter of RDP and
        PLD), for
        ``SelfComposedEvent(PoissonSampledEvent(sampling_probability, GaussianEvent(sigma)), steps)``.
      canaries: ``m``.
      steps: ``T``.
      confidence: of the lower bound (Bonferroni-corrected over the guess grid).
      l2_norm_clip: ``C``; each canary's vector has norm exactly ``C``.
      sampling_probability: Poisson probability of a canary in a step (1: white-box, full power).
      guesses: ``k`` guesses per side; None tries :func:`guess_grid` with Bonferroni correction.
      no_noise: pass noise multiplier 0 to the mechanism while still claiming ``epsilon``
        (a deliberately broken mechanism, to show the audit's power).
      directions: ``"axes"`` or ``"orthogonal"`` (:func:`_canary_directions`).
      seed: seeds the canaries' inclusion and directions, the masks and the noise.

    Returns:
      A dict: ``epsilon_claimed``, ``epsilon_lower_bound``, ``violation``, the guesses, ``max_certifiable``
      (the bound had every guess been right: the audit's ceiling) and what was run.
    """
    from zodc.privacy.accounting import calibration_pld_interval, epsilon_bounds
    from zodc.privacy.calibration import calibrate_noise_multiplier_pld

    if isinstance(canaries, bool) or not isinstance(canaries, (int, np.integer)) or canaries < 2:
        raise ConfigError(f"`canaries` must be an integer >= 2. Got {canaries!r}.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ConfigError(f"`steps` must be an integer >= 1. Got {steps!r}.")
    if not 0 < sampling_probability <= 1:
        raise ConfigError(f"`sampling_probability` must be in (0, 1]. Got {sampling_probability}.")
    if not (math.isfinite(l2_norm_clip) and l2_norm_clip > 0):
        raise ConfigError(f"`l2_norm_clip` must be finite and > 0. Got {l2_norm_clip}.")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise ConfigError(f"`epsilon` must be finite and > 0 (nothing to audit at inf). Got {epsilon}.")
    if not 0 < confidence < 1:
        raise ConfigError(f"`confidence` must be in (0, 1). Got {confidence}.")
    start = time.perf_counter()
    event_fn = _step_event(float(sampling_probability), int(steps))
    sigma = calibrate_noise_multiplier_pld(float(epsilon), float(delta), event_fn)
    claimed = epsilon_bounds(event_fn(sigma), float(delta),
                             value_discretization_interval=calibration_pld_interval(float(epsilon)))["epsilon"]
    used_sigma = 0.0 if no_noise else sigma

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xA0D17]))
    inclusion = rng.random(canaries) < 0.5
    units = _canary_directions(rng, int(canaries), directions)
    sums = step_noisy_sums(l2_norm_clip * units, inclusion, l2_norm_clip, used_sigma, int(steps),
                           float(sampling_probability), int(rng.integers(2**63)))
    scores = units.astype(np.float64) @ sums.sum(axis=0)
    order = np.argsort(scores, kind="stable")

    grid = [int(guesses)] if guesses is not None else guess_grid(int(canaries))
    if any(k < 1 or 2 * k > canaries for k in grid):
        raise ConfigError(f"`guesses` per side must be in [1, canaries / 2]. Got {guesses}.")
    level_confidence = 1.0 - (1.0 - confidence) / len(grid)
    rows = []
    for k in grid:
        correct = int(inclusion[order[-k:]].sum() + (~inclusion[order[:k]]).sum())
        bound = epsilon_lower_bound(canaries, 2 * k, correct, delta, level_confidence)
        rows.append({"guesses_per_side": k, "guesses": 2 * k, "correct": correct, "epsilon_lower_bound": bound})
    best = max(rows, key=lambda row: row["epsilon_lower_bound"])
    ceiling = max(epsilon_lower_bound(canaries, 2 * k, 2 * k, delta, level_confidence) for k in grid)
    lower = best["epsilon_lower_bound"]
    return {
        "epsilon_claimed": float(claimed),
        "epsilon_target": float(epsilon),
        "epsilon_lower_bound": float(lower),
        "violation": bool(lower > claimed),
        "confidence": float(confidence),
        "delta": float(delta),
        "method": "white-box one-run canary audit (Steinke, Nasr & Jagielski 2023, arXiv:2305.08846, "
                  "Theorem 5.2 with its delta term)",
        "claim": (f"{steps} adaptive steps of the Gaussian mechanism on the clipped sum, each canary "
                  f"Poisson-sampled with p = {sampling_probability:g}: SelfComposedEvent(PoissonSampledEvent("
                  f"{sampling_probability:g}, GaussianEvent({sigma:.6g})), {steps}); epsilon_claimed is the RDP "
                  f"accountant's epsilon of that event at delta = {delta:g}"),
        "mechanism": mechanism_name(),
        "noise_multiplier": float(sigma),
        "noise_multiplier_used": float(used_sigma),
        "no_noise": bool(no_noise),
        "l2_norm_clip": float(l2_norm_clip),
        "sampling_probability": float(sampling_probability),
        "steps": int(steps),
        "canaries": int(canaries),
        "canaries_included": int(inclusion.sum()),
        "directions": directions,
        "guesses_per_side": int(best["guesses_per_side"]),
        "guesses": int(best["guesses"]),
        "correct": int(best["correct"]),
        "guess_grid": rows,
        "bonferroni_tests": len(grid),
        "max_certifiable": float(ceiling),
        "can_detect_violation": bool(ceiling > claimed),
        "seed": int(seed),
        "seconds": round(time.perf_counter() - start, 3),
    }


# ----------------------------------------------------------------------------- membership inference


def _dcr_scores(records: np.ndarray, labels: np.ndarray, synthetic: np.ndarray, synthetic_labels: np.ndarray,
                same_class: bool) -> np.ndarray:
    """Minus the distance of each record to its closest synthetic row (of its class if ``same_class``
    and the class has a synthetic row): higher = more likely a member."""
    distances = np.sqrt(np.maximum(
        (records**2).sum(1)[:, None] + (synthetic**2).sum(1)[None, :] - 2.0 * records @ synthetic.T, 0.0))
    if same_class:
        other = labels[:, None] != synthetic_labels[None, :]
        has_own = (~other).any(axis=1)
        distances = np.where(other & has_own[:, None], np.inf, distances)
    return -distances.min(axis=1)


def membership_inference(dataset: str = "breast_cancer", epsilon: float = 8.0, delta: float = 1e-5, *,
                         seeds: Sequence[int] = (0, 1, 2), steps: int = DEFAULT_STEPS, model: str = "tree",
                         member_fraction: float = 0.5, **condenser_params: Any) -> dict[str, Any]:
    """Black-box distance-to-closest-record membership inference on the released table.

    Per seed: a stratified split (``member_fraction`` members), ``Condenser(model, epsilon=...,
    schema=<the bundled public schema>, random_state=seed, steps=steps).fit`` on the members; every
    record (members and non-members) is encoded with :class:`zodc.data.transform.TableEncoder` and
    scored by minus its L2 distance to the closest synthetic row of its class in ``table_`` (encoded
    units); ``roc_auc_score`` with members positive. The any-class distance's AUC is reported too, and,
    as the attack's power reference, its AUC when the release is instead a random sample of real
    member rows with the same number of rows per class (no privacy at all).

    Returns:
      ``mia_auc`` (mean over seeds), ``mia_auc_per_seed``, ``mia_auc_std``, the any-class AUCs and
      what was run.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from zodc.data.datasets import load_dataset
    from zodc.data.transform import TableEncoder
    from zodc.estimator import Condenser

    data = load_dataset(dataset)
    schema = data.schema
    if schema.target is None:
        raise DataError(f"the membership-inference audit needs a classification dataset; {dataset!r} is "
                        f"{data.info.task}.")
    frame = data.frame
    encoded = TableEncoder(schema).encode(frame)
    start = time.perf_counter()
    per_seed, any_class, real_sample, synthetic_rows = [], [], [], []
    for seed in seeds:
        members, nonmembers = train_test_split(np.arange(len(frame)), train_size=member_fraction,
                                               stratify=encoded.y, random_state=int(seed))
        train = frame.iloc[members]
        condenser = Condenser(model, epsilon=epsilon, delta=delta, schema=schema, random_state=int(seed),
                              steps=steps, **condenser_params)
        condenser.fit(train.drop(columns=[schema.target]), train[schema.target])
        synthetic = np.asarray(condenser.table_, np.float64)
        synthetic_labels = np.asarray(condenser.labels_)
        index = np.concatenate([members, nonmembers])
        truth = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
        records = np.asarray(encoded.X, np.float64)[index]
        labels = np.asarray(encoded.y)[index]
        per_seed.append(float(roc_auc_score(truth, _dcr_scores(records, labels, synthetic, synthetic_labels, True))))
        any_class.append(float(roc_auc_score(truth, _dcr_scores(records, labels, synthetic, synthetic_labels, False))))
        # The attack's power reference: release as many real member rows per class as the table has.
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A3])); released = []
        for label in np.unique(synthetic_labels):
            own = members[np.asarray(encoded.y)[members] == label]
            released.append(rng.choice(own, size=min(len(own), int((synthetic_labels == label).sum())), replace=False))
        released = np.concatenate(released)
        real_sample.append(float(roc_auc_score(truth, _dcr_scores(
            records, labels, np.asarray(encoded.X, np.float64)[released], np.asarray(encoded.y)[released], True))))
        synthetic_rows.append(int(synthetic.shape[0]))
    return {
        "mia_auc": float(np.mean(per_seed)),
        "mia_auc_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
        "mia_auc_per_seed": per_seed,
        "mia_auc_any_class": float(np.mean(any_class)),
        "mia_auc_any_class_per_seed": any_class,
        "mia_auc_real_sample": float(np.mean(real_sample)),
        "mia_auc_real_sample_per_seed": real_sample,
        "mia_method": "distance to the closest synthetic row of the record's class, encoded units; ROC AUC, "
                      "members positive",
        "mia_seeds": [int(s) for s in seeds],
        "mia_members": int(len(members)),
        "mia_nonmembers": int(len(nonmembers)),
        "mia_synthetic_rows": synthetic_rows,
        "mia_model": model,
        "mia_steps": int(steps),
        "mia_epsilon": float(epsilon),
        "mia_seconds": round(time.perf_counter() - start, 3),
    }


# ----------------------------------------------------------------------------- the command


def _certify_text(result: dict[str, Any]) -> tuple[str, str]:
    lower, claimed, conf, delta = (result["epsilon_lower_bound"], result["epsilon_claimed"], result["confidence"],
                                   result["delta"])
    if result["violation"]:
        certifies = (f"VIOLATION: with confidence {conf:g}, the audited step mechanism is not ({claimed:.3g}, "
                     f"{delta:g})-DP as claimed: it is not (eps, {delta:g})-DP for any eps < {lower:.3g}.")
    elif lower > 0:
        certifies = (f"With confidence {conf:g}, the implemented step mechanism is not (eps, {delta:g})-DP for any "
                     f"eps < {lower:.3g} (a positive lower bound: the audit had power), and no violation of the "
                     f"claimed epsilon {claimed:.3g} was found.")
    else:
        certifies = (f"Nothing: at confidence {conf:g} no epsilon > 0 is rejected (the audit had no power at this "
                     f"noise; no violation found, none excluded).")
    if not result["violation"] and result["max_certifiable"] <= claimed:
        certifies += (f" This audit could not have detected a violation of this claim: even with every guess "
                      f"right its bound is {result['max_certifiable']:.3g} <= {claimed:.3g} (the one-run bound is "
                      f"capped by the number of canaries and by delta).")
    cannot = ("It does not prove the claimed epsilon (an upper bound needs the proof and the accountant; a "
              "lower bound below the claim is consistent with a mechanism anywhere between the two). It covers "
              "the step mechanism only (clip, grid sum, noise), not the schema, the DP start or the feature "
              "selection. The MIA AUC is black-box evidence about one attack, not proof of privacy.")
    return certifies, cannot


def write_json_atomic(path: str, payload: Any) -> None:
    """Writes JSON to a temporary file in ``path``'s folder, then ``os.replace``: all or nothing."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    handle, temporary = tempfile.mkstemp(prefix=".audit-", suffix=".json.tmp", dir=directory)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(payload, stream, indent=2, default=_json_default)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _json_default(value):
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return str(value)


def add_audit_parser(subparsers) -> argparse.ArgumentParser:
    """Adds ``zodc audit`` to an argparse ``subparsers`` object; returns its parser.

    Hook into the CLI (``zodc/cli.py``)::

        from zodc.evaluate.audit import add_audit_parser; add_audit_parser(sub)   # build_parser
        elif args.command == "audit": print(json.dumps(audit_command(args), indent=2))   # main
    """
    parser = subparsers.add_parser(
        "audit", help="empirical privacy audit: canary lower bound on epsilon and membership inference",
        description="White-box one-run canary audit of the step mechanism (a lower bound on epsilon at the "
                    "stated confidence) and black-box membership inference on the released table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--dataset", default="breast_cancer", help="bundled classification dataset for the MIA")
    parser.add_argument("--epsilon", type=float, default=8.0, help="claimed epsilon")
    parser.add_argument("--delta", type=float, default=1e-5, help="claimed delta")
    parser.add_argument("--canaries", type=int, default=DEFAULT_CANARIES, help="canaries m (each in with prob. 1/2)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="steps T of the audited mechanism")
    parser.add_argument("--confidence", type=float, default=0.95, help="confidence of the lower bound")
    parser.add_argument("--guesses", type=int, default=None,
                        help="guesses per side k (default: m/2, m/4, ... 16, Bonferroni-corrected)")
    parser.add_argument("--sampling-probability", type=float, default=1.0,
                        help="Poisson probability of a canary in a step (1: in every step, white-box power)")
    parser.add_argument("--l2-norm-clip", type=float, default=1.0, help="clip C; every canary has norm C")
    parser.add_argument("--mia-seeds", type=int, default=DEFAULT_MIA_SEEDS,
                        help="membership-inference seeds (condensations); 0 skips it")
    parser.add_argument("--mia-steps", type=int, default=DEFAULT_STEPS, help="steps of each MIA condensation")
    parser.add_argument("--model", default="tree", help="model preset of the MIA condensations")
    parser.add_argument("--no-noise", action="store_true",
                        help="remove the noise from the mechanism while still claiming epsilon (shows the audit's power)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the canary audit; the membership inference uses seeds SEED, SEED+1, ...")
    parser.add_argument("--out", default=None, help="JSON path (written atomically); default: not written")
    return parser


def audit_command(args) -> dict[str, Any]:
    """Runs ``zodc audit`` from parsed ``args``; writes ``args.out`` atomically (if given); returns the dict."""
    if args.out is not None:
        directory = os.path.dirname(os.path.abspath(args.out)) or "."
        if not os.path.isdir(directory):
            raise ConfigError(f"--out: directory {directory!r} does not exist.")
    if args.mia_seeds < 0:
        raise ConfigError(f"--mia-seeds must be >= 0. Got {args.mia_seeds}.")
    started = time.perf_counter()
    canary = canary_audit(args.epsilon, args.delta, canaries=args.canaries, steps=args.steps,
                          confidence=args.confidence, l2_norm_clip=args.l2_norm_clip,
                          sampling_probability=args.sampling_probability, guesses=args.guesses,
                          no_noise=args.no_noise, seed=args.seed)
    result: dict[str, Any] = {
        "dataset": args.dataset,
        "epsilon": float(args.epsilon),
        "delta": float(args.delta),
        **canary,
    }
    if args.mia_seeds > 0:
        seeds = [args.seed + i for i in range(args.mia_seeds)]
        result.update(membership_inference(args.dataset, args.epsilon, args.delta, seeds=seeds,
                                           steps=args.mia_steps, model=args.model))
    else:
        result.update({"mia_auc": None, "mia_seeds": []})
    result["certifies"], result["does_not_certify"] = _certify_text(result)
    result["seconds_total"] = round(time.perf_counter() - started, 3)
    if args.out is not None:
        write_json_atomic(args.out, result)
    return result
