"""Seeds for tests: fixed, so CI never flakes; a fresh draw only in an opt-in stress run.

``ZODC_RANDOMISED_TESTS=1 pytest ...`` replaces every fixed seed with fresh entropy (printed, so a
failing draw can be replayed). Never set in CI.
"""

import os

import numpy as np

RANDOMISED = os.environ.get("ZODC_RANDOMISED_TESTS") == "1"


def test_seed(fixed: int, name: str = "test") -> int:
    """``fixed``, or with ``ZODC_RANDOMISED_TESTS=1`` a fresh 32-bit seed (printed)."""
    if not RANDOMISED:
        return fixed
    fresh = int(np.random.SeedSequence().entropy % 2**32)
    print(f"{name} seed: {fresh}")
    return fresh


test_seed.__test__ = False  # not a test, despite its name
