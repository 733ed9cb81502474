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

# check name -> why it fails on a condenser (one line each). "DEFECT" marks a real defect, reported
# to the lead: remove the entry when it is fixed.
EXPECTED_FAILURES = {
    "check_estimators_nan_inf": "by design: NaN is a missing value (the schema's missingness) and inf an odd cell read as "
                                "missing, so fit accepts both (the estimator does not declare input_tags.allow_nan)",
    "check_fit2d_1sample": "refuses a one-row table as a one-label target, in its own words "
                           "('has 1 distinct labels'), not sklearn's '1 sample' / '1 class'",
    "check_complex_data": "refuses a complex target in its own words (categories must be strings, numbers or "
                          "booleans); DEFECT: complex features are cast to real, only a numpy ComplexWarning",
    "check_dtype_object": "DEFECT: a dict in a cell raises a bare TypeError ('unhashable type') instead of a DataError "
                          "naming the column",
    "check_estimators_empty_data_messages": "DEFECT: X with 0 columns is refused as 'no feature column could be estimated "
                                            "from the noisy counts (... about 0 records ...)', not as having no column",
    "check_estimator_sparse_tag": "DEFECT: sparse X is refused as '`X` must be 2-dimensional ... Got shape ()' "
                                  "(np.asarray of a sparse matrix), not as sparse input being unsupported",
    "check_estimator_sparse_array": "DEFECT: as check_estimator_sparse_tag (the message does not say 'sparse')",
    "check_estimator_sparse_matrix": "DEFECT: as check_estimator_sparse_tag (the message does not say 'sparse')",
}


def _expected_failures(estimator):
    return EXPECTED_FAILURES


@parametrize_with_checks([Condenser(**QUICK)], expected_failed_checks=_expected_failures, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
