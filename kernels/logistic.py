"""Device-native, vmappable L2-penalised logistic regression.

A drop-in for ``sklearn.linear_model.LogisticRegression(penalty="l2", solver="lbfgs")``
inside the zero-order loop: one fit is a fixed-shape damped Newton iteration, so
``jax.jit(jax.vmap(model.fit))`` fits a whole stack of perturbed synthetic tables at once.

Objective (scikit-learn's convention, minimised)::

    C * sum_i s_i * logloss_i(W, b) + 0.5 * ||W||_F^2        (intercept b unpenalised)

which has the same minimiser as scikit-learn's internally rescaled
``sum_i s_i logloss_i / sum(s) + ||W||^2 / (2 C sum(s))``.

* Binary (``n_classes == 2``): the binomial model, ``coef`` of shape ``(1, d)`` as scikit-learn's
  ``coef_``; Newton-Raphson (IRLS) with step halving.
* Multi-class (``n_classes > 2``): the multinomial (softmax) model with scikit-learn's full,
  over-parameterised ``(K, d + 1)`` parameterisation. The L2 penalty makes ``W`` unique (its rows
  sum to zero at the optimum); the unpenalised intercepts are unique only up to a common shift.
  scikit-learn's lbfgs starts at zero and every gradient has intercept components summing to
  zero, so its intercepts sum to zero; we select the same representative by adding
  ``0.5 * (sum_k b_k)^2``, which leaves the likelihood unchanged and pins the shift.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import chex
import jax
import jax.numpy as jnp

__all__ = ["LogisticParams", "LogisticRegression"]


@chex.dataclass(frozen=True)
class LogisticParams:
    """Fitted logistic-regression parameters (a pytree; batched under ``vmap``).

    Attributes:
        coef: ``(1, d)`` for binary, ``(K, d)`` for multi-class; scikit-learn's ``coef_``.
        intercept: ``(1,)`` for binary, ``(K,)`` for multi-class; zeros without an intercept.
        converged: ``()`` bool, whether Newton met its tolerance within ``max_iter`` steps.
        n_iter: ``()`` int32, Newton steps taken.
    """

    coef: chex.Array
    intercept: chex.Array
    converged: chex.Array
    n_iter: chex.Array


# Every product of the linear kernels in full float32 (or float64). By default JAX lets an NVIDIA GPU
# of the Ampere generation or later compute float32 matmuls in TF32 (10-bit mantissas): the Newton
# steps would then stop about 1e-3 (relative) away from scikit-learn's and lifelines' optimum. The
# CPU computes float32 products either way, so this changes nothing there.
HIGHEST = jax.lax.Precision.HIGHEST


def matmul(a: chex.Array, b: chex.Array) -> chex.Array:
    """``a @ b`` at ``HIGHEST`` precision."""
    return jnp.matmul(a, b, precision=HIGHEST)


def float_dtype(X) -> jnp.dtype:
    """The floating dtype a fit runs in: ``X``'s if floating, else JAX's default float."""
    return jnp.promote_types(jnp.result_type(X), jnp.result_type(float))


def damped_newton(
    objective_fn: Callable[[chex.Array], chex.Array],
    gradient_hessian_fn: Callable[[chex.Array], tuple[chex.Array, chex.Array]],
    theta0: chex.Array,
    max_iter: int,
    tol: float,
    max_halvings: int = 30,
) -> tuple[chex.Array, chex.Array, chex.Array]:
    """Minimises a smooth convex function by Newton's method with step halving.

    Fixed shapes throughout (``lax.while_loop`` with an iteration cap), so it traces once and
    vmaps; under ``vmap`` finished members of the batch stay frozen while the others iterate.

    Each step solves ``(H + r I) delta = -g`` by Cholesky. The tiny ridge ``r`` (relative to the
    Hessian's diagonal, never below a few float epsilons) keeps flat directions (constant
    columns, an unpenalised likelihood that is flat, a separable problem) solvable without
    changing the solution of a well-posed problem beyond rounding. The step is halved until the
    objective does not increase; a step that cannot decrease it at all means the iterate sits at
    the floating-point optimum (or the problem is hopeless) and ends the loop.

    Convergence is declared after a step whose Newton decrement ``-g.delta / 2`` (the predicted
    reduction) was below ``max(tol, 10 eps) * (1 + |f|)``: Newton's local quadratic
    convergence makes the iterate after such a step far more accurate than the decrement's
    square root suggests, provided the Newton step itself is small (``max |delta| <= 0.1``;
    a flat likelihood with a maximiser at infinity has a vanishing decrement but steps of
    constant size, and must not pass). A stall counts as convergence only when the decrement is
    already at rounding level, ``1e3 eps (1 + |f|)``.

    Args:
        objective_fn: ``theta (p,) -> ()`` objective to minimise.
        gradient_hessian_fn: ``theta (p,) -> (g (p,), H (p, p))``.
        theta0: ``(p,)`` starting point.
        max_iter: cap on Newton steps.
        tol: relative tolerance on the Newton decrement.
        max_halvings: cap on step halvings per Newton step.

    Returns:
        ``(theta (p,), converged () bool, n_iter () int32)``; ``theta`` is always finite when
        the objective is finite at ``theta0``.
    """
    dtype = theta0.dtype
    eps = jnp.finfo(dtype).eps
    rel_tol = jnp.maximum(jnp.asarray(tol, dtype), 10 * eps)
    stall_tol = 1e3 * eps
    eye = jnp.eye(theta0.shape[0], dtype=dtype)

    def newton_direction(theta):
        g, h = gradient_hessian_fn(theta)
        scale = 1.0 + jnp.max(jnp.abs(jnp.diagonal(h)))
        ridge = jnp.maximum(1e-10, 10 * eps) * scale
        chol = jnp.linalg.cholesky(h + ridge * eye)
        delta = -jax.scipy.linalg.cho_solve((chol, True), g)
        # A Hessian that is not numerically positive definite (it should be, for a convex
        # objective plus a ridge) gives NaN: fall back to a scaled gradient step.
        ok = jnp.all(jnp.isfinite(delta))
        delta = jnp.where(ok, delta, -g / scale)
        decrement = jnp.maximum(-jnp.vdot(g, delta, precision=HIGHEST), 0.0)
        return delta, decrement

    def line_search(theta, f, delta):
        def cond(carry):
            step, f_new, k = carry
            return (~(f_new <= f)) & (k < max_halvings)

        def body(carry):
            step, _, k = carry
            step = step * 0.5
            return step, objective_fn(theta + step * delta), k + 1

        one = jnp.asarray(1.0, dtype)
        step, f_new, _ = jax.lax.while_loop(
            cond, body, (one, objective_fn(theta + delta), jnp.asarray(0, jnp.int32)))
        accepted = f_new <= f  # False also when f_new is NaN
        return step, f_new, accepted

    def cond(state):
        _, _, it, done, _ = state
        return (~done) & (it < max_iter)

    def body(state):
        theta, f, it, _, _ = state
        delta, decrement = newton_direction(theta)
        step, f_new, accepted = line_search(theta, f, delta)
        # A tiny decrement with a large Newton step is the signature of a likelihood that
        # flattens towards a maximiser at infinity (separation), not of convergence: keep
        # stepping and let `max_iter` flag it. 0.1 is lifelines' threshold for the same warning.
        short = jnp.max(jnp.abs(delta)) <= 0.1
        # When the predicted decrease is below the objective's float resolution (float32 near the
        # optimum) the line search cannot see it and would reject the step, freezing the previous
        # iterate; Newton's local quadratic convergence makes the full step the right one there.
        f_full = objective_fn(theta + delta)
        unresolvable = short & (0.5 * decrement <= 100 * eps * (1.0 + jnp.abs(f))) & jnp.isfinite(f_full)
        theta = jnp.where(unresolvable, theta + delta, jnp.where(accepted, theta + step * delta, theta))
        f = jnp.where(unresolvable, f_full, jnp.where(accepted, f_new, f))
        accepted = accepted | unresolvable
        scale = 1.0 + jnp.abs(f)
        small = (0.5 * decrement <= rel_tol * scale) & short
        stalled = (~accepted) & (0.5 * decrement <= stall_tol * scale) & short
        converged = small | stalled
        done = converged | (~accepted)
        return theta, f, it + 1, done, converged

    f0 = objective_fn(theta0)
    state = (theta0, f0, jnp.asarray(0, jnp.int32), jnp.asarray(False), jnp.asarray(False))
    theta, _, n_iter, _, converged = jax.lax.while_loop(cond, body, state)
    return theta, converged, n_iter


def _validate_sample_weight(sample_weight, m: int, dtype) -> chex.Array:
    if sample_weight is None:
        return jnp.ones((m,), dtype)
    sample_weight = jnp.asarray(sample_weight, dtype)
    if sample_weight.shape != (m,):
        raise ValueError(
            f"`sample_weight` must have shape ({m},). Got {sample_weight.shape}.")
    return sample_weight


@dataclasses.dataclass(frozen=True)
class LogisticRegression:
    """L2-penalised logistic regression fitted by damped Newton; equals scikit-learn's.

    Hyperparameters are static (hashable, closed over under ``jit``). ``fit`` and
    ``predict_proba`` are pure and ``jax.vmap``-able over a batch of tables of equal shape.

    Attributes:
        n_classes: number of classes K >= 2; labels are ``0 .. K-1``. Fixed statically so that
            output shapes do not depend on which labels a (synthetic) table happens to hold.
        C: inverse L2 strength, scikit-learn's convention (penalty ``0.5 ||W||^2 / C`` against
            the summed, sample-weighted log-loss; intercept unpenalised).
        max_iter: cap on Newton steps.
        tol: relative tolerance on the Newton decrement (floored at ``10 eps`` of the dtype).
        fit_intercept: whether to fit an (unpenalised) intercept.

    Examples:
        >>> model = LogisticRegression(C=1.0)
        >>> params = jax.jit(jax.vmap(model.fit))(keys, X, y)   # X (B, m, d), y (B, m)
        >>> proba = jax.vmap(model.predict_proba, (0, None))(params, X_real)  # (B, n, 2)
    """

    n_classes: int = 2
    C: float = 1.0
    max_iter: int = 50
    tol: float = 1e-8
    fit_intercept: bool = True

    def __post_init__(self):
        if not isinstance(self.n_classes, int) or isinstance(self.n_classes, bool) \
                or self.n_classes < 2:
            raise ValueError(f"`n_classes` must be an int >= 2. Got {self.n_classes!r}.")
        if not (isinstance(self.C, (int, float)) and self.C > 0 and self.C < float("inf")):
            raise ValueError(f"`C` must be a finite float > 0. Got {self.C!r}.")
        if not isinstance(self.max_iter, int) or isinstance(self.max_iter, bool) \
                or self.max_iter < 1:
            raise ValueError(f"`max_iter` must be an int >= 1. Got {self.max_iter!r}.")
        if not (isinstance(self.tol, (int, float)) and self.tol > 0):
            raise ValueError(f"`tol` must be a float > 0. Got {self.tol!r}.")
        if not isinstance(self.fit_intercept, bool):
            raise ValueError(f"`fit_intercept` must be a bool. Got {self.fit_intercept!r}.")

    def _design(self, X: chex.Array) -> chex.Array:
        """``(m, d) -> (m, d + 1)``; the intercept column is all zeros without an intercept."""
        ones = jnp.ones((X.shape[0], 1), X.dtype)
        return jnp.concatenate([X, ones if self.fit_intercept else 0 * ones], axis=1)

    def fit(self, key: chex.PRNGKey, X: chex.Array, y: chex.Array,
            sample_weight: chex.Array | None = None) -> LogisticParams:
        """Fits the model to one table.

        Args:
            key: unused (the fit is deterministic); accepted for the shared kernel interface.
            X: ``(m, d)`` features.
            y: ``(m,)`` integer labels in ``0 .. n_classes - 1``.
            sample_weight: optional ``(m,)`` non-negative weights (scikit-learn's meaning).

        Returns:
            ``LogisticParams``. Without both classes present (binary) or with a class absent
            (multi-class) the relevant intercept drifts towards -inf; the fit stays finite and
            reports ``converged=False`` (scikit-learn raises instead).
        """
        del key
        dtype = float_dtype(X)
        X = jnp.asarray(X, dtype)
        m, d = X.shape
        y = jnp.asarray(y).astype(jnp.int32)
        if y.shape != (m,):
            raise ValueError(f"`y` must have shape ({m},). Got {y.shape}.")
        s = _validate_sample_weight(sample_weight, m, dtype)
        Z = self._design(X)
        inv_C = jnp.asarray(1.0 / self.C, dtype)
        # L2 penalty on the weights only: the last (intercept) coordinate is unpenalised.
        penalty_mask = jnp.concatenate([jnp.ones((d,), dtype), jnp.zeros((1,), dtype)])
        if self.n_classes == 2:
            theta, converged, n_iter = self._fit_binary(Z, y.astype(dtype), s, inv_C,
                                                        penalty_mask)
            coef, intercept = theta[None, :d], theta[d:]
        else:
            theta, converged, n_iter = self._fit_multinomial(Z, y, s, inv_C, penalty_mask)
            coef, intercept = theta[:, :d], theta[:, d]
        if self.fit_intercept:
            # An absent class sends its unpenalised intercept to -inf; Newton's ridge would
            # eventually stall it at a finite value that looks converged. Say so explicitly.
            class_weight = jax.ops.segment_sum(s, y, num_segments=self.n_classes)
            converged = converged & jnp.all(class_weight > 0)
        else:
            intercept = jnp.zeros_like(intercept)
        return LogisticParams(coef=coef, intercept=intercept, converged=converged,
                              n_iter=n_iter)

    def _fit_binary(self, Z, y, s, inv_C, penalty_mask):
        d1 = Z.shape[1]

        def objective(theta):
            z = matmul(Z, theta)
            # log(1 + e^z) - y z, stable for both signs of z.
            loss = jnp.logaddexp(0.0, z) - y * z
            return jnp.sum(s * loss) + 0.5 * inv_C * jnp.sum(penalty_mask * theta**2)

        def gradient_hessian(theta):
            p = jax.nn.sigmoid(matmul(Z, theta))
            g = matmul(Z.T, s * (p - y)) + inv_C * penalty_mask * theta
            h = matmul(Z.T * (s * p * (1.0 - p)), Z) + jnp.diag(inv_C * penalty_mask)
            return g, h

        theta0 = jnp.zeros((d1,), Z.dtype)
        return damped_newton(objective, gradient_hessian, theta0, self.max_iter, self.tol)

    def _fit_multinomial(self, Z, y, s, inv_C, penalty_mask):
        K, (m, d1) = self.n_classes, Z.shape
        Y = jax.nn.one_hot(y, K, dtype=Z.dtype)
        # Pins the sum of the intercepts (see module docstring); zero without an intercept.
        pin = jnp.asarray(1.0 if self.fit_intercept else 0.0, Z.dtype)

        def unflatten(theta):
            return theta.reshape(K, d1)

        def objective(theta):
            Wb = unflatten(theta)
            logits = matmul(Z, Wb.T)
            loss = jax.nn.logsumexp(logits, axis=1) - jnp.sum(Y * logits, axis=1)
            return (jnp.sum(s * loss) + 0.5 * inv_C * jnp.sum(penalty_mask * Wb**2)
                    + 0.5 * pin * jnp.sum(Wb[:, -1]) ** 2)

        def gradient_hessian(theta):
            Wb = unflatten(theta)
            P = jax.nn.softmax(matmul(Z, Wb.T), axis=1)                 # (m, K)
            g = matmul(((P - Y) * s[:, None]).T, Z)                     # (K, d1)
            g = g + inv_C * penalty_mask * Wb
            g = g.at[:, -1].add(pin * jnp.sum(Wb[:, -1]))
            # H[k,a,l,b] = sum_i s_i (p_ik [k==l] - p_ik p_il) z_ia z_ib, as two plain matmuls
            # over the flattened (class, feature) axis: einsums with four free indices lower
            # to slow batched contractions under vmap on CPU.
            PZ = (P[:, :, None] * Z[:, None, :]).reshape(m, K * d1)   # (m, K d1)
            sPZ = PZ * s[:, None]
            cross = matmul(sPZ.T, PZ)                                    # (K d1, K d1)
            diag_blocks = matmul(sPZ.T, Z).reshape(K, d1, d1)            # (K, d1, d1)
            eye_K = jnp.eye(K, dtype=Z.dtype)
            h = jnp.einsum("kl,kab->kalb", eye_K, diag_blocks, precision=HIGHEST).reshape(K * d1, K * d1) - cross
            reg = jnp.kron(eye_K, jnp.diag(inv_C * penalty_mask))
            pin_block = jnp.zeros((d1, d1), Z.dtype).at[-1, -1].set(pin)
            reg = reg + jnp.kron(jnp.ones((K, K), Z.dtype), pin_block)
            return g.reshape(-1), h + reg

        theta0 = jnp.zeros((K * d1,), Z.dtype)
        theta, converged, n_iter = damped_newton(objective, gradient_hessian, theta0,
                                                 self.max_iter, self.tol)
        return unflatten(theta), converged, n_iter

    def decision_function(self, params: LogisticParams, X: chex.Array) -> chex.Array:
        """Raw scores ``X W^T + b``: ``(n, 1)`` binary (log-odds of class 1), ``(n, K)`` else."""
        X = jnp.asarray(X, params.coef.dtype)
        return matmul(X, params.coef.T) + params.intercept

    def predict_proba(self, params: LogisticParams, X: chex.Array) -> chex.Array:
        """Class probabilities.

        Args:
            params: a fitted ``LogisticParams``.
            X: ``(n, d)`` features.

        Returns:
            ``(n, n_classes)`` probabilities, rows summing to one (scikit-learn's ``predict_proba``).
        """
        scores = self.decision_function(params, X)
        if self.n_classes == 2:
            p1 = jax.nn.sigmoid(scores[:, 0])
            return jnp.stack([1.0 - p1, p1], axis=1)
        return jax.nn.softmax(scores, axis=1)

    def predict(self, params: LogisticParams, X: chex.Array) -> chex.Array:
        """``(n,)`` int32 most probable class (ties go to the lower label, as scikit-learn)."""
        return jnp.argmax(self.predict_proba(params, X), axis=1).astype(jnp.int32)
