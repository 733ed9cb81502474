"""scikit-learn's own estimator checks (``parametrize_with_checks``) on ``Condenser``.

The instance is configured to be quick on the checks' small random tables: no noise
(``epsilon=inf``: with a finite budget and no public schema, the DP schema of a 20-row table keeps
no column, by design), 2 synthetic rows per class (the condenser refuses a table that is not larger
than its synthetic one), 2 steps of 2 directions, the host tree (the native kernel compiles a new
program for every table size the checks draw), a fixed seed.

Every check that cannot pass is listed in ``EXPECTED_FAILURES`` with its reason. They are strict
expected failures: a check listed here that starts passing fails this test, so fix the entry.
"""

import pytest
import sklearn
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.fixes import parse_version

from zodc import Condenser

if parse_version(sklearn.__version__) < parse_version("1.8"):  # `xfail_strict` is new in 1.8
    pytest.skip("scikit-learn >= 1.8 needed for parametrize_with_checks(xfail_strict=...)", allow_module_level=True)

QUICK = dict(backend="host", epsilon=float("inf"), steps=2, num_directions=2, rows_per_class=2, random_state=0)

# check name -> why it fails on a condenser (one line each). Fixed defects the checks found: sparse X,
# X without a column and complex X are refused with sklearn's words; a dict in a cell is one record's
# odd cell (missing), not a TypeError; NaN is declared allowed (input_tags.allow_nan: missing values);
# a one-row table's refusal says "one class". Nothing is expected to fail now: add an entry only with its reason.
# The one skip is scikit-learn's own: its array-API check runs only with SCIPY_ARRAY_API=1 set.
EXPECTED_FAILURES: dict = {}


def _expected_failures(estimator):
    return EXPECTED_FAILURES


@parametrize_with_checks([Condenser(**QUICK)], expected_failed_checks=_expected_failures, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
