"""scikit-learn's own estimator checks on EnergyLensRegressor, and the same contracts on the input it takes.

X is a profiling-schema DataFrame (named columns: model, gpu, batch_size, ...; docs/SCHEMA.md), so every check
that feeds a NumPy or sparse array cannot apply: those are listed below as expected failures with the reason
(strict: a check that starts to pass must leave the list). The contracts they stand for are tested after it on
schema tables."""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from energylens.errors import NotFittedError
from energylens.evaluation.synthetic import synthetic_profiles
from energylens.model.estimator import EnergyLensRegressor

ARRAY = "X must be a profiling-schema DataFrame; the check passes a NumPy array"
EXPECTED_FAILURES = {name: ARRAY for name in (
    "check_complex_data", "check_dict_unchanged", "check_dont_overwrite_parameters", "check_dtype_object",
    "check_estimators_dtypes", "check_estimators_fit_returns_self", "check_estimators_overwrite_params",
    "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_fit2d_1feature", "check_fit2d_1sample",
    "check_fit2d_predict1d", "check_fit_check_is_fitted", "check_fit_idempotent", "check_fit_score_takes_y",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_n_features_in",
    "check_n_features_in_after_fitting", "check_pipeline_consistency", "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input", "check_regressor_data_not_an_array", "check_regressors_int",
    "check_regressors_no_decision_function", "check_regressors_train", "check_supervised_y_2d")}
EXPECTED_FAILURES.update({
    "check_estimator_sparse_array": "a sparse X is refused as any non-DataFrame is, naming the schema, not sparsity",
    "check_estimator_sparse_matrix": "a sparse X is refused as any non-DataFrame is, naming the schema, not sparsity",
    "check_estimator_sparse_tag": "a sparse X is refused as any non-DataFrame is, naming the schema, not sparsity",
    "check_estimators_empty_data_messages": "NumPy arrays, and scikit-learn's own wording for 0 features; an empty "
                                            "schema table is refused with a ValueError (test below)",
    "check_estimators_nan_inf": "NumPy arrays; NaN and inf in a schema table: test below",
})


@parametrize_with_checks([EnergyLensRegressor(structure="compact", cv_folds=0, n_starts=1)],
                         expected_failed_checks=lambda est: EXPECTED_FAILURES, xfail_strict=True)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def rows():
    return synthetic_profiles(n=24, seed=3)  # generated from the closed form, not measurements


def _estimator():
    return EnergyLensRegressor(structure="compact", cv_folds=0, n_starts=1)


def test_predicting_before_fit_raises_sklearns_not_fitted_error(rows):
    est = _estimator()
    with pytest.raises(SklearnNotFittedError):
        est.predict(rows)
    with pytest.raises(NotFittedError):  # the project's, one line on the command line
        est.explain(rows)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(est)


def test_fit_returns_self_keeps_parameters_and_is_idempotent(rows):
    est = _estimator()
    params = est.get_params()
    assert est.fit(rows) is est
    assert est.get_params() == params
    check_is_fitted(est)
    first = est.predict(rows)
    np.testing.assert_allclose(clone(est).fit(rows).predict(rows), first, rtol=1e-9)
    order = np.random.default_rng(0).permutation(len(rows))
    np.testing.assert_allclose(est.predict(rows.iloc[order]), first[order], rtol=1e-12)


def test_a_fitted_estimator_pickles(rows):
    est = _estimator().fit(rows)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(est)).predict(rows), est.predict(rows), rtol=1e-12)


def test_an_empty_table_is_refused_with_a_value_error(rows):
    with pytest.raises(ValueError, match="no rows"):
        _estimator().fit(rows.iloc[:0])


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_in_a_table_that_needs_validation_is_refused_with_a_value_error(rows, value):
    from energylens.data.schema import DESCRIPTORS

    raw = rows.drop(columns=[c for c in DESCRIPTORS if c in rows]).astype({"input_tokens": float})
    raw.loc[0, "input_tokens"] = value
    with pytest.raises(ValueError, match="input_tokens"):
        _estimator().fit(raw)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_in_a_described_table_is_refused_with_a_value_error(rows, value):
    bad = rows.astype({"input_tokens": float})
    bad.loc[0, "input_tokens"] = value
    with pytest.raises(ValueError, match="input_tokens"):
        _estimator().fit(bad)
