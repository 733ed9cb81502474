"""Device-native, vmappable Cox proportional-hazards regression.

A drop-in for ``lifelines.CoxPHFitter(penalizer=p, l1_ratio=0)`` inside the zero-order loop:
one fit is a fixed-shape damped Newton iteration on the penalised partial likelihood, so
``jax.jit(jax.vmap(model.fit))`` fits a stack of perturbed synthetic tables at once.

Conventions copied from lifelines (so that coefficients agree with it):

* X is standardised internally: ``Z = (X - mean) / std`` with the *unweighted* column mean and
  sample standard deviation (``ddof=1``), and the Newton iteration runs on ``b = beta * std``.
* The penalty is ``0.5 * m * penalizer * ||b||^2`` on the *standardised* coefficients, with
  ``m`` the number of rows (not the sum of weights), subtracted from the weighted partial
  log-likelihood. Returned coefficients are on the original scale, ``beta = b / std``.
* Ties: Efron (1977) or Breslow (1974). Weighted Efron follows lifelines: tied events share the
  mean event weight of their tie group, and the ``l / D`` fractions count events, not weight.
* The baseline cumulative hazard is Breslow's estimator with the fitted, *centred* linear
  predictor, ``H0(t) = sum_{t_k <= t} (sum of event weights at t_k) /
  (sum_{t_j >= t_k} w_j exp((x_j - mean) . beta))``, for both tie methods (lifelines uses the
  same estimator after an Efron fit). ``S(t | x) = exp(-H0(t) exp((x - mean) . beta))``.

Departures, chosen for robustness in the optimisation loop:

* A constant column (lifelines: division by zero, NaN) gets coefficient exactly 0.
* No exceptions: a singular or non-convergent fit returns finite parameters and
  ``converged=False`` (lifelines raises ``ConvergenceError`` or warns).
* Risk-set sums are shifted by the largest linear predictor, so large predictors do not
  overflow float32, and floored, so an underflowed risk set gives no ``log(0)``.

References:
    Breslow, N. (1974). Covariance analysis of censored survival data. Biometrics 30, 89-99.
    Efron, B. (1977). The efficiency of Cox's likelihood function for censored data.
    JASA 72, 557-565.
"""

from __future__ import annotations

import dataclasses

import chex
import jax
import jax.numpy as jnp

from zodc.kernels.logistic import damped_newton, float_dtype, matmul

__all__ = ["CoxParams", "CoxPH"]

_TIES = ("efron", "breslow")


@chex.dataclass(frozen=True)
class CoxParams:
    """Fitted Cox parameters (a pytree; batched under ``vmap``).

    Attributes:
        coef: ``(d,)`` coefficients on the original scale of X (lifelines' ``params_``).
        mean: ``(d,)`` training column means; the linear predictor is ``(x - mean) . coef``.
        times: ``(m,)`` training times, sorted ascending (the baseline's step locations).
        cumulative_hazard: ``(m,)`` baseline cumulative hazard ``H0`` at ``times`` (within a
            tie group only the last entry is the full value; lookups use that one).
        converged: ``()`` bool, whether Newton met its tolerance within ``max_iter`` steps.
        n_iter: ``()`` int32, Newton steps taken.
        log_likelihood: ``()`` penalised log partial likelihood at the fit (lifelines'
            ``log_likelihood_`` convention).
    """

    coef: chex.Array
    mean: chex.Array
    times: chex.Array
    cumulative_hazard: chex.Array
    converged: chex.Array
    n_iter: chex.Array
    log_likelihood: chex.Array


def _is_nonnegative_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0 \
        and value < float("inf")


@dataclasses.dataclass(frozen=True)
class CoxPH:
    """L2-penalised Cox regression by damped Newton; equals lifelines' ``CoxPHFitter``.

    Hyperparameters are static (hashable, closed over under ``jit``). ``fit``,
    ``predict_risk`` and ``predict_survival`` are pure and ``jax.vmap``-able over a batch of
    tables of equal shape. The fit runs in the dtype of X (float32 or float64).

    Attributes:
        penalizer: L2 strength in lifelines' convention (see module docstring), >= 0.
        ties: ``"efron"`` (Efron 1977, lifelines' method) or ``"breslow"`` (Breslow 1974).
        max_iter: cap on Newton steps.
        tol: relative tolerance on the Newton decrement (floored at ``10 eps`` of the dtype).

    Degenerate tables (documented behaviour; never NaN):
        * all censored: the partial likelihood is constant, ``coef = 0``, ``converged=True``,
          ``H0 = 0`` so ``S(t | x) = 1``.
        * constant column: its coefficient is 0; the rest is fitted as without the column.
        * perfectly separated with ``penalizer = 0``: the maximiser is at infinity; the fit
          returns large finite coefficients and ``converged=False`` (Newton does not meet its
          tolerance, or the information matrix at the stopping point is ill-conditioned:
          ``lambda_min <= sqrt(eps) lambda_max``). With ``penalizer > 0`` the problem is
          strictly concave and converges to finite coefficients.
        ``converged`` is True only when Newton met its tolerance *and* (unless there are no
        events) the penalised information matrix is well conditioned; a nearly collinear
        table with ``penalizer = 0`` is therefore flagged as well.

    Examples:
        >>> model = CoxPH(penalizer=0.1)
        >>> params = jax.jit(jax.vmap(model.fit))(keys, X, time, event)   # (B, m, d), (B, m)
        >>> surv = jax.vmap(model.predict_survival, (0, None, None))(params, X_real, grid)
    """

    penalizer: float = 0.1
    ties: str = "efron"
    max_iter: int = 50
    tol: float = 1e-9

    def __post_init__(self):
        if not _is_nonnegative_number(self.penalizer):
            raise ValueError(f"`penalizer` must be >= 0. Got {self.penalizer!r}.")
        if self.ties not in _TIES:
            raise ValueError(f"`ties` must be one of {_TIES}. Got {self.ties!r}.")
        if not isinstance(self.max_iter, int) or isinstance(self.max_iter, bool) \
                or self.max_iter < 1:
            raise ValueError(f"`max_iter` must be an int >= 1. Got {self.max_iter!r}.")
        if not (_is_nonnegative_number(self.tol) and self.tol > 0):
            raise ValueError(f"`tol` must be a float > 0. Got {self.tol!r}.")

    def fit(self, key: chex.PRNGKey, X: chex.Array, time: chex.Array, event: chex.Array,
            sample_weight: chex.Array | None = None) -> CoxParams:
        """Fits the model to one table.

        Args:
            key: unused (the fit is deterministic); accepted for the shared kernel interface.
            X: ``(m, d)`` covariates.
            time: ``(m,)`` durations, > 0.
            event: ``(m,)`` event indicators in {0, 1} (1 = event observed).
            sample_weight: optional ``(m,)`` non-negative case weights (lifelines'
                ``weights_col``). They do not enter the standardisation or the penalty's
                ``m``, as in lifelines.

        Returns:
            ``CoxParams``.
        """
        del key
        dtype = float_dtype(X)
        X = jnp.asarray(X, dtype)
        m, d = X.shape
        time = jnp.asarray(time, dtype)
        event = jnp.asarray(event, dtype)
        for name, value in (("time", time), ("event", event)):
            if value.shape != (m,):
                raise ValueError(f"`{name}` must have shape ({m},). Got {value.shape}.")
        if sample_weight is None:
            weight = jnp.ones((m,), dtype)
        else:
            weight = jnp.asarray(sample_weight, dtype)
            if weight.shape != (m,):
                raise ValueError(
                    f"`sample_weight` must have shape ({m},). Got {weight.shape}.")

        # lifelines' standardisation; a constant column (exactly: max == min) gets scale 1
        # and an all-zero standardised column, hence a zero coefficient.
        mean = jnp.mean(X, axis=0)
        constant = jnp.max(X, axis=0) == jnp.min(X, axis=0)
        std = jnp.std(X, axis=0, ddof=1) if m > 1 else jnp.zeros((d,), dtype)
        scale = jnp.where(constant | ~(std > 0), 1.0, std)
        Z = jnp.where(constant, 0.0, (X - mean) / scale)

        # Everything that does not depend on the coefficients is done once, here.
        order = jnp.argsort(time, stable=True)
        ts, Z, e, w = time[order], Z[order], event[order], weight[order]
        risk = _RiskSets.build(ts, e, w, efron=self.ties == "efron")

        penalty = 0.5 * m * jnp.asarray(self.penalizer, dtype)

        def objective(b):
            return -risk.log_likelihood(matmul(Z, b)) + penalty * jnp.sum(b**2)

        identity = jnp.eye(d, dtype=dtype)

        def gradient_hessian(b):
            gradient, hessian = risk.derivatives(Z, b)
            return -gradient + 2 * penalty * b, -hessian + 2 * penalty * identity

        b, converged, n_iter = damped_newton(objective, gradient_hessian,
                                             jnp.zeros((d,), dtype), self.max_iter, self.tol)
        # Identifiability: with penalizer 0 a perfectly separated table has its maximiser at
        # infinity, and Newton can stop on a numerically flat (or, through cancellation in the
        # risk-set covariances, numerically garbage) curvature. Require the penalised
        # information matrix, constant columns aside, to be well conditioned at the solution.
        info = gradient_hessian(b)[1]
        info = info + jnp.diag(jnp.where(constant, 1.0 + jnp.max(jnp.abs(jnp.diagonal(info))),
                                         0.0))
        eigenvalues = jnp.linalg.eigvalsh(info)
        well_posed = eigenvalues[0] > jnp.sqrt(jnp.finfo(dtype).eps) * eigenvalues[-1]
        converged = converged & (well_posed | (jnp.sum(e) == 0))
        eta = matmul(Z, b)
        return CoxParams(
            coef=b / scale,
            mean=mean,
            times=ts,
            cumulative_hazard=jnp.cumsum(risk.baseline_hazard(eta)),
            converged=converged,
            n_iter=n_iter,
            log_likelihood=-objective(b),
        )

    def predict_risk(self, params: CoxParams, X: chex.Array) -> chex.Array:
        """Log partial hazard ``(x - mean) . coef`` (lifelines' ``predict_log_partial_hazard``).

        Args:
            params: a fitted ``CoxParams``.
            X: ``(n, d)`` covariates.

        Returns:
            ``(n,)`` linear predictor; higher means higher risk.
        """
        X = jnp.asarray(X, params.coef.dtype)
        return matmul(X - params.mean, params.coef)

    def predict_cumulative_hazard(self, params: CoxParams, X: chex.Array,
                                  times: chex.Array) -> chex.Array:
        """``(n, len(times))`` cumulative hazard ``H0(t) exp(risk)``, right-continuous steps."""
        times = jnp.asarray(times, params.times.dtype)
        # Last training row with time <= t; before the first time the baseline is 0.
        index = jnp.searchsorted(params.times, times, side="right") - 1
        h0 = jnp.where(index >= 0, params.cumulative_hazard[jnp.maximum(index, 0)], 0.0)
        # exp(log H0 + eta) rather than H0 * exp(eta): no inf * 0 when eta is huge.
        log_h0 = jnp.log(jnp.maximum(h0, 0.0))
        return jnp.exp(log_h0[None, :] + self.predict_risk(params, X)[:, None])

    def predict_survival(self, params: CoxParams, X: chex.Array,
                         times: chex.Array) -> chex.Array:
        """Survival ``S(t | x) = exp(-H0(t) exp((x - mean) . coef))``.

        ``H0`` is the Breslow (1974) baseline for both tie methods, as lifelines computes it,
        evaluated as a right-continuous step function (lifelines interpolates linearly
        between its knots; both agree at the training times).

        Args:
            params: a fitted ``CoxParams``.
            X: ``(n, d)`` covariates.
            times: ``(k,)`` evaluation times.

        Returns:
            ``(n, k)`` survival probabilities in [0, 1].
        """
        return jnp.exp(-self.predict_cumulative_hazard(params, X, times))


@chex.dataclass(frozen=True)
class _RiskSets:
    """Static tie/risk-set structure of a table sorted by time (built once per fit).

    Row ``i`` belongs to the tie group of all rows with the same time; ``start`` / ``end`` are
    the group's first / last rows, so the group's risk set is ``rows >= start``.

    Risk-set sums are reverse cumulative sums of ``phi_j = w_j exp(eta_j - c)`` with the shift
    ``c = max eta`` (so nothing overflows; only a risk set whose every member sits ~87 (float32)
    below the largest predictor could underflow, which happens only for diverging
    coefficients, and is floored rather than allowed to become ``log 0``). Tie-group sums use
    ``segment_sum`` over contiguous groups, not differences of cumulative sums, so they do not
    cancel in float32.
    """

    start: chex.Array        # (m,) int: first row of i's tie group
    end: chex.Array          # (m,) int: last row of i's tie group
    event: chex.Array        # (m,) 0/1
    weight: chex.Array       # (m,)
    fraction: chex.Array     # (m,) Efron's l / D for the l-th event of a group of D; 0 Breslow
    mean_weight: chex.Array  # (m,) mean event weight of i's group (lifelines' weighting)

    @staticmethod
    def build(ts, event, weight, efron: bool) -> "_RiskSets":
        m = ts.shape[0]
        start = jnp.searchsorted(ts, ts, side="left")
        end = jnp.searchsorted(ts, ts, side="right") - 1
        events_per_group = jax.ops.segment_sum(event, start, num_segments=m)[start]
        weight_per_group = jax.ops.segment_sum(event * weight, start, num_segments=m)[start]
        if efron:
            events_before = jnp.cumsum(event) - event
            rank = events_before - events_before[start]   # 0 .. D-1 among a group's events
            fraction = event * rank / jnp.maximum(events_per_group, 1.0)
        else:
            fraction = jnp.zeros((m,), ts.dtype)
        return _RiskSets(start=start, end=end, event=event, weight=weight, fraction=fraction,
                         mean_weight=weight_per_group / jnp.maximum(events_per_group, 1.0))

    def _group_sum(self, values):
        """Sum of ``values`` (m, ...) over each row's tie group, broadcast back to rows."""
        m = values.shape[0]
        return jax.ops.segment_sum(values, self.start, num_segments=m)[self.start]

    def _risk_sum(self, values):
        """Sum of ``values`` (m, ...) over each row's risk set ``rows >= start``."""
        return jnp.cumsum(values[::-1], axis=0)[::-1][self.start]

    def _scores(self, eta):
        shift = jax.lax.stop_gradient(jnp.max(eta))
        return self.weight * jnp.exp(eta - shift), shift

    def _denominator(self, phi):
        """Efron's ``R - (l / D) T`` per row (Breslow: ``R``), floored away from 0."""
        tiny = jnp.finfo(phi.dtype).tiny
        risk = jnp.maximum(self._risk_sum(phi), tiny)
        tie = self._group_sum(self.event * phi)
        # T <= R always; the clip guards only the floored, underflowed case.
        return risk * (1.0 - self.fraction * jnp.minimum(tie / risk, 1.0))

    def log_likelihood(self, eta):
        """Weighted (Efron or Breslow) log partial likelihood of ``eta`` ``(m,)``."""
        phi, shift = self._scores(eta)
        log_denominator = shift + jnp.log(self._denominator(phi))
        return jnp.sum(self.event * (self.weight * eta - self.mean_weight * log_denominator))

    def derivatives(self, Z, b):
        """Gradient ``(d,)`` and Hessian ``(d, d)`` of the log partial likelihood in ``b``.

        With ``c_i = e_i omega_i / den_i`` (omega the group's mean event weight):
        ``grad = Z^T (e w) - N^T c`` where ``N_i = sum_R phi z - f_i sum_T phi z``, and
        ``-hess = Z^T diag(phi (A - e B)) Z - N^T diag(c / den) N`` with
        ``A_j = sum_{i: t_i <= t_j} c_i`` (risk sets containing j) and
        ``B_j = sum_{i in j's group} c_i f_i``: the ``(d, d)`` risk-set sums are never formed
        per row, so the cost is two ``(d, m) @ (m, d)`` products.
        """
        eta = matmul(Z, b)
        phi, _ = self._scores(eta)
        den = self._denominator(phi)
        phi_z = phi[:, None] * Z
        numerator = self._risk_sum(phi_z) - self.fraction[:, None] * self._group_sum(
            self.event[:, None] * phi_z)
        c = self.event * self.mean_weight / den
        gradient = matmul(Z.T, self.event * self.weight) - matmul(numerator.T, c)
        a = jnp.cumsum(c)[self.end]
        b_group = self._group_sum(c * self.fraction)
        row_weight = phi * (a - self.event * b_group)
        neg_hessian = matmul((Z * row_weight[:, None]).T, Z) - matmul((numerator * (c / den)[:, None]).T, numerator)
        return gradient, -neg_hessian

    def baseline_hazard(self, eta):
        """``(m,)`` Breslow hazard increments per event row; they sum to the group's jump."""
        phi, shift = self._scores(eta)
        log_risk = shift + jnp.log(jnp.maximum(self._risk_sum(phi), jnp.finfo(phi.dtype).tiny))
        return self.event * self.weight * jnp.exp(-log_risk)
