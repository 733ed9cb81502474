"""What holding the steps against the DP count costs in noise (docs/reference.md, "The steps'
sampling probability comes from a DP count").

The steps' sampling probability ``p = B / n_hat`` comes from a DP count, so their noise must hold
whatever the count gives. Two tables, both against each branch calibrated alone (as if ``p`` were
fixed, the rule the proof does not cover):

* **single fits** (``zodc.budget.Budget``): the reference Gaussian rule and the window rule, at
  record counts from 8,000 to 10^6 (a DP schema of noise multiplier 11.872 and two classes, 300
  steps, B = 256), at epsilon 1 and 4; the rules zodc uses there and the noise they give;
* **a private search** (``SharedBudget``): two candidates' steps held at the one RDP order fixed
  before the data (``zodc.privacy.calibration.filter_order``) against each branch at its own best
  order, at sampling probabilities from 0.001 to 0.5.

Accounting only: no data, no fits; seconds to a minute on the 2-core VM.

    python -m benchmarks.adaptive_steps --out benchmarks/results/adaptive_steps.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

from zodc.budget import Budget, SharedBudget
from zodc.privacy.calibration import (calibrate_dominated_steps, calibrate_noise_multiplier,
                                      calibrate_noise_multiplier_pld, count_half_width, filter_order)
from zodc.privacy.events import (AdditiveDeltaEvent, ExponentialMechanismEvent, GaussianEvent, PoissonSampledEvent,
                                 SelfComposedEvent)

DELTA, STEPS, BATCH, SCHEMA_SIGMA, CLASSES = 1e-5, 300, 256, 11.872, 2
SCHEMA = (GaussianEvent(SCHEMA_SIGMA), AdditiveDeltaEvent(1e-6))  # a DP schema and its threshold delta


def _steps(p: float):
    return lambda s: SelfComposedEvent(PoissonSampledEvent(p, GaussianEvent(s)), STEPS)


def single_fit(epsilon: float, record_count: float) -> dict:
    """One fit's steps at ``record_count``: alone, the reference Gaussian alone, and zodc's rules."""
    p = min(1.0, BATCH / record_count)
    alone = calibrate_noise_multiplier_pld(epsilon, DELTA, _steps(p), base_events=SCHEMA)
    gaussian = calibrate_dominated_steps(epsilon, DELTA, STEPS, p, base_events=SCHEMA, start=alone)[0]
    budget = Budget(epsilon, DELTA)
    for event in SCHEMA:
        budget.add("schema", event, "")
    budget.count_spread = (SCHEMA_SIGMA / math.sqrt(0.1), CLASSES)  # the role counts' noise (SHARE_ROLE)
    held = budget.calibrate(steps=STEPS, num_directions=64, batch_size=BATCH, record_count=record_count,
                            l2_norm_clip=1.0).noise_multiplier
    return {"epsilon": epsilon, "record_count": record_count, "p": p, "rules": budget.reference["rules"],
            "half_width": budget.reference["half_width"], "sigma_alone": alone, "sigma_gaussian_rule": gaussian,
            "sigma_zodc": held, "gaussian_rule_cost": gaussian / alone - 1, "zodc_cost": held / alone - 1}


def search(epsilon: float, p: float, candidates: int = 2) -> dict:
    """The first of ``candidates`` alike candidates' steps at ``p``: its own best order against the
    search's fixed one (after a DP count of SCHEMA_SIGMA, the choice at 0.1 epsilon reserved)."""
    prior = (GaussianEvent(SCHEMA_SIGMA), ExponentialMechanismEvent(0.1 * epsilon))
    copies = lambda s: SelfComposedEvent(_steps(p)(s), candidates)
    own = calibrate_noise_multiplier(epsilon, DELTA, copies, base_events=prior)
    shared = SharedBudget(epsilon, DELTA, prior_events=(ExponentialMechanismEvent(0.1 * epsilon),), copies=candidates)
    budget = Budget(epsilon, DELTA, shared)
    budget.add("record_count", GaussianEvent(SCHEMA_SIGMA), "")
    held = budget.calibrate(steps=STEPS, num_directions=64, batch_size=BATCH, record_count=BATCH / p,
                            l2_norm_clip=1.0).noise_multiplier
    return {"epsilon": epsilon, "p": p, "order": shared.orders[0], "sigma_own_order": own, "sigma_fixed_order": held,
            "cost": held / own - 1}


def run(epsilons=(1.0, 4.0), counts=(8_000, 15_300, 30_000, 100_000, 1_000_000),
        probabilities=(0.001, 0.005, 0.02, 0.1, 0.5)) -> dict:
    start = time.perf_counter()
    fits = [single_fit(e, n) for e in epsilons for n in counts]
    searches = [search(e, p) for e in epsilons for p in probabilities]
    return {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
            "delta": DELTA, "steps": STEPS, "batch_size": BATCH, "schema_sigma": SCHEMA_SIGMA,
            "filter_orders": {str(e): filter_order(e, DELTA) for e in epsilons},
            "single_fit": fits, "search": searches, "seconds": time.perf_counter() - start}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = run()
    for row in results["single_fit"]:
        print(f"fit    eps {row['epsilon']:g} n {row['record_count']:>9,.0f} p {row['p']:.5f} {'+'.join(row['rules']):15s} "
              f"gaussian rule {row['gaussian_rule_cost']:+7.2%}  zodc {row['zodc_cost']:+7.2%}")
    for row in results["search"]:
        print(f"search eps {row['epsilon']:g} p {row['p']:<6g} order {row['order']:g}: fixed order {row['cost']:+7.2%}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
