import math

import jax
import numpy as np
import pytest

from zodc.errors import ConfigError
from zodc.privacy import RdpAccountant
from zodc.privacy.events import ExponentialMechanismEvent, SelfComposedEvent
from zodc.privacy.ledger import event_from_dict, event_to_dict
from zodc.privacy.selection import (calibrate_selection_epsilon, class_separation_scores, exponential_top_k,
                                    select_features)


def test_exponential_mechanism_rdp_is_bounded_range_zcdp():
    orders = np.array([1.5, 2.0, 10.0, 1000.0])
    rdp = RdpAccountant(orders).compose(ExponentialMechanismEvent(0.4)).rdp
    np.testing.assert_allclose(rdp, np.minimum(orders * 0.4**2 / 8, 0.4))
    event = SelfComposedEvent(ExponentialMechanismEvent(0.3), 4)
    assert event_from_dict(event_to_dict(event)) == event


def test_score_sensitivity_bound_holds_when_a_record_is_added():
    rng = np.random.default_rng(301)
    X = rng.uniform(-1, 1, size=(200, 6))
    y = rng.integers(0, 3, size=200)
    proportions = (0.3, 0.3, 0.4)
    scores, sensitivity = class_separation_scores(X, y, proportions, 200)
    for _ in range(50):
        extra = rng.choice([-1.0, 1.0], size=(1, 6))
        label = rng.integers(0, 3, size=1)
        # The public n stays the same: neighbouring tables share the public record count.
        other, _ = class_separation_scores(np.vstack([X, extra]), np.concatenate([y, label]), proportions, 200)
        assert np.max(np.abs(other - scores)) <= sensitivity + 1e-12


def test_selection_prefers_informative_columns_and_exact_top_k_at_infinite_epsilon():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=400)
    X = rng.uniform(-1, 1, size=(400, 10))
    X[:, 3] = np.clip(0.8 * (2 * y - 1) + 0.2 * rng.normal(size=400), -1, 1)
    X[:, 7] = np.clip(0.5 * (2 * y - 1) + 0.3 * rng.normal(size=400), -1, 1)
    exact, _ = select_features(jax.random.key(0), X, y, 2, (0.5, 0.5), 400, math.inf)
    assert exact.tolist() == [3, 7]
    hits = [3 in select_features(jax.random.key(s), X, y, 2, (0.5, 0.5), 400, 0.5)[0] for s in range(20)]
    assert sum(hits) >= 18
    # With a vanishing epsilon the choice is uniform: the mechanism really is random.
    picks = [int(exponential_top_k(jax.random.key(s), np.arange(10.0), 1, 1e-9, 1.0)[0]) for s in range(200)]
    assert len(set(picks)) >= 8


def test_calibrated_selection_meets_the_target_and_bad_k_is_named():
    per_selection = calibrate_selection_epsilon(0.3, 1e-5, 5)
    spent = RdpAccountant().compose(SelfComposedEvent(ExponentialMechanismEvent(per_selection), 5)).get_epsilon(1e-5)
    assert spent <= 0.3 and spent > 0.29
    with pytest.raises(ConfigError, match="`select_features`"):
        select_features(jax.random.key(0), np.zeros((5, 3)), np.zeros(5, int), 4, (0.5, 0.5), 5, 1.0)
