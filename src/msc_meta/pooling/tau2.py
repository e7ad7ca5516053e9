"""Between-study variance (tau²) estimators, vectorised over many pools at once.

Every function works on 2-D arrays ``Y, V`` of shape ``(groups, kmax)``: one
row per pool, padded on the right, with a boolean ``mask`` (True = study
present). 1-D inputs are one pool and give a scalar back. All estimators are
those of metafor 3.8 ``rma.uni()``, read from its source, for the
intercept-only model and for a model with moderators alike: an optional
design ``X`` of shape ``(groups, kmax, p)`` (``(k, p)`` for one pool) gives
the mixed-effects model ``y = Xβ + u + e`` (``rma(yi, vi, mods=)``), and every
formula below holds with ``μ̂`` the weighted least-squares fit ``Xβ̂``,
``P = W - WX(X'WX)⁻¹X'W`` and ``k - 1`` replaced by ``k - p``. Without ``X``
(or with the single column of ones) the model is intercept-only, X = 1,
where the sums over ``P`` have closed forms that keep full precision at any
variance ratio (see the projection section); with moderators they come
from a QR decomposition of ``W^½X`` per iteration, O(k p²), never k×k.
The formulas, for the intercept-only case:

- ``DL``  DerSimonian & Laird (1986): ``(Q - (k-1)) / (Σw - Σw²/Σw)``, w = 1/v.
- ``HE``  Hedges (1983), method of moments on unweighted residuals:
  ``(Σ(y-ȳ)² - (1 - 1/k) Σv) / (k-1)``.
- ``HS``  Hunter & Schmidt (2004): ``(Q - k) / Σw``, w = 1/v.
- ``SJ``  Sidik & Jonkman (2005): one step from ``τ0² = Σ(y-ȳ)²/k``,
  ``τ0² · Q(τ0²) / (k-1)`` with weights 1/(v + τ0²) (metafor's non-iterated SJ).
- ``PM``  Paule & Mandel (1982): the root of ``Q(τ²) = k - 1``; 0 when
  ``Q(0) < k - 1``.
- ``ML``, ``REML``  Fisher scoring from the (truncated) HE estimate, with
  metafor's step halving to stay at or above 0 and its check that the
  likelihood at τ² = 0 is not higher (``ll0check``); Viechtbauer (2005).
  Where step halving creeps towards the boundary (τ² below 1e-8·s² with
  the score at 0 pointing down) the estimate is reported as exactly 0, the
  limit metafor approaches (it stops at ~1e-13 with threshold 1e-12).
- ``EB``  Morris (1983) empirical Bayes, metafor's iteration
  ``τ² += (Q(τ²)·k/(k-1) - k) / Σw``; its fixed point is ``Q(τ²) = k-1``, so in
  the intercept-only model EB equals PM (reached by a different route).

Every estimate is truncated at 0 as in metafor. ``Q(τ²) = Σ w (y - μ̂)²`` with
``w = 1/(v + τ²)`` is the generalised Q statistic (Viechtbauer 2007), also
used by the Q-profile confidence interval here.

Convergence (ML, REML, EB): a group stops when ``|Δτ²| <= tol · (τ² + 1e-4 s²)``
with ``tol = 1e-10`` and ``s²`` its typical within-study variance, i.e.
relative 1e-10, with an absolute floor 1e-14·s² so that estimates
converging to the boundary 0 (by step halving) also stop. Root finding (PM,
Q-profile) is safeguarded Newton with bisection, to about 1e-13 relative.

Only numpy is imported (this module is on the ``pool``
path). ``msc_meta.pooling.metareg`` (``regress``, ``bias``, the funnel
centre) and ``msc_meta.pooling.rma`` (``pool``) both estimate τ² here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msc_meta import registry
from msc_meta.errors import ComputationError, InputError, UsageError


DEFAULT_TOL = 1e-10
DEFAULT_MAXITER = 1000
METAFOR_MAXITER = 100      # rma.uni's default control$maxiter for Fisher scoring



@dataclass(frozen=True)
class Tau2Estimate:
    """tau² of every group, with what the estimator needed to say about it.

    Arrays of shape ``(groups,)``. ``se_tau2`` is metafor's ``se.tau2`` (NaN
    where undefined, e.g. k = 1). ``iterations`` counts Fisher-scoring steps
    (0 for closed-form and root-finding estimators; plus root-finding
    steps where ``rescued``). ``converged`` is False
    where the iteration did not converge; ``messages`` holds the reason
    (None where it converged). ``ll0_reset`` marks ML/REML groups set to 0 by
    metafor's check that the likelihood at τ² = 0 is higher.
    """

    method: str
    tau2: np.ndarray
    se_tau2: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    messages: tuple
    ll0_reset: np.ndarray
    truncated: np.ndarray
    rescued: np.ndarray
    s2: np.ndarray | None = None    # typical_variance(V, mask) (X = 1) where the estimator computed it

    def iteration_notes(self, g: int) -> list[str]:
        """The notes of group ``g`` on how its Fisher scoring ended (rescued, ll0check), for every fit."""
        notes = []
        if self.rescued[g]:
            notes.append(f"{self.method} Fisher scoring did not converge in {METAFOR_MAXITER} steps (metafor's "
                         "default stops here); the estimate was found by root finding on the same score equation")
        if self.ll0_reset[g]:
            notes.append(f"{self.method} Fisher scoring stopped at a local maximum; tau² set to 0 as metafor")
        return notes


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------

def as_batch(Y, V, mask=None):
    """Validate and return float ``Y, V`` (groups, kmax), bool ``mask`` and k per group.

    Padded cells are set to y = 0, v = 1 so that they never produce NaN; every
    sum below multiplies them by a zero weight. ``mask=None`` means every
    finite (y, v) pair is a study.
    """
    Y = np.asarray(Y, dtype=float)
    V = np.asarray(V, dtype=float)
    if Y.ndim == 1:
        Y = Y[None, :]
    if V.ndim == 1:
        V = V[None, :]
    if Y.shape != V.shape or Y.ndim != 2:
        raise UsageError(f"yi and vi must have the same shape (groups, studies); got {Y.shape} and {V.shape}")
    if mask is None:
        mask = np.isfinite(Y) & np.isfinite(V)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim == 1:
            mask = mask[None, :]
        if mask.shape != Y.shape:
            raise UsageError(f"mask must have the shape of yi {Y.shape}; got {mask.shape}")
    bad_y = mask & ~np.isfinite(Y)
    bad_v = mask & ~(np.isfinite(V) & (V > 0))
    if bad_y.any():
        g, j = np.argwhere(bad_y)[0]
        raise InputError(f"effect size yi is not finite (group {g + 1}, study {j + 1})")
    if bad_v.any():
        g, j = np.argwhere(bad_v)[0]
        raise InputError(f"sampling variance vi must be positive and finite (group {g + 1}, study {j + 1}, "
                         f"vi = {V[g, j]!r}); metafor cannot compute Q, I² or the DL/PM/HS estimators then")
    if mask.all():      # nothing padded: the arrays as they are (contiguous, as np.where made them)
        Y, V = np.ascontiguousarray(Y), np.ascontiguousarray(V)
    else:
        Y = np.where(mask, Y, 0.0)
        V = np.where(mask, V, 1.0)
    k = mask.sum(axis=1)
    return Y, V, mask, k


def as_design(X, Y, mask):
    """The design as ``(groups, kmax, p)`` floats (zero in padded cells), or None for X = 1.

    ``X=None`` and a single column of ones both mean the intercept-only
    model, which then takes the closed-form path (so ``bias`` and the funnel
    centre get exactly the numbers of ``pool``).
    """
    if X is None:
        return None
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim == 2:
        X = X[None, :, :]
    if X.ndim != 3 or X.shape[:2] != Y.shape:
        raise UsageError(f"the design must have shape (groups, studies, p) matching yi {Y.shape}; "
                         f"got {X.shape}")
    if not np.isfinite(X[mask]).all():
        raise InputError("the design matrix X has a value that is not finite")
    if X.shape[2] == 1 and (X[mask] == 1.0).all():
        return None
    X = np.where(mask[:, :, None], X, 0.0)
    # metafor refuses a design that is not of full column rank (its evtol check of X'X);
    # columns scaled to unit length first, so that a moderator in cells (1e8) is no reason
    norms = np.sqrt((X * X).sum(axis=1, keepdims=True))
    R = np.linalg.qr(X / np.where(norms > 0, norms, 1.0), mode="r")
    deficient = (np.abs(np.diagonal(R, axis1=1, axis2=2)) <= 1e-7).any(axis=1)
    if X.shape[1] < X.shape[2] or deficient.any():
        g = int(np.nonzero(deficient)[0][0]) if deficient.any() else 0
        raise UsageError(f"the design matrix X is not of full column rank (group {g + 1}): drop a "
                         "column that the others determine, or add studies")
    return X


def _p(X) -> int:
    return 1 if X is None else X.shape[2]


def _scalar_if_1d(Y, result):
    return float(result[0]) if np.ndim(Y) == 1 else result


# ---------------------------------------------------------------------------
# weighted sums for P = W - WX(X'WX)⁻¹X'W
#
# Intercept-only (X = 1): P = W - w w'/Σw, whose sums have closed forms of
# same-signed terms (below, suffix 1). With moderators: W^½X = QR (thin QR,
# rows sorted by weight so that Householder reflections stay accurate when
# weights differ by many orders of magnitude, Powell & Reid 1969), so that
# P = W^½(I - QQ')W^½ and every sum is O(k p²).
# ---------------------------------------------------------------------------

def _leave_one_out(A):
    """``Σ_{j≠i} a_j`` for every i, from exclusive prefix and suffix sums.

    Computing it as ``Σa - a_i`` cancels catastrophically when one a_i holds
    almost all of the sum (weights 1e15 times the others); adding the others
    never subtracts, so every entry keeps full relative precision.
    """
    # the same sums in the same order as cumsum(A)[:, :-1] and the reversed cumsum, written
    # into two buffers (no concatenated copies: at k = 10^6 each is 8 MB, 29 calls a REML fit)
    out = np.empty_like(A, dtype=float)
    if out.shape[1] == 0:
        return out
    suf = np.empty_like(out)
    out[:, 0] = 0.0
    suf[:, -1] = 0.0
    np.cumsum(A[:, :-1], axis=1, out=out[:, 1:])
    np.cumsum(A[:, :0:-1], axis=1, out=suf[:, -2::-1])
    out += suf
    return out


def _kept(mask, x):
    """``np.where(mask, x, 0.0)`` for a freshly computed ``x``: ``x`` itself when every
    entry is kept (the same values, one pass and one 8 MB array fewer at k = 10^6)."""
    return x if mask.all() else np.where(mask, x, 0.0)


def _residuals1(Y, W, mask, sw=None, scratch=None):
    """``μ̂ = Σwy/Σw`` and residuals ``y - μ̂``, accurate when one weight dominates.

    Centred at the study of largest weight: ``μ̂ - y_ref = Σ w (y - y_ref) / Σw``
    has full relative precision, so the dominant study's residual
    ``-(μ̂ - y_ref)`` does not drown in the rounding of ``y_ref - μ̂`` (its weight
    times that rounding error is what broke Q and the REML score).
    ``sw``: ``W.sum(axis=1)`` when the caller has it; ``scratch``: an array like ``W``
    that may be overwritten (the caller's buffer for its next product: one new 8 MB
    array fewer per call at k = 10^6, where fresh memory is slow to touch).
    """
    ref = np.take_along_axis(Y, np.argmax(W, axis=1)[:, None], axis=1)
    d = _kept(mask, Y - ref)          # a new array: shifted in place (one 8 MB copy fewer at 10^6)
    shift = np.multiply(W, d, out=scratch).sum(axis=1) / (W.sum(axis=1) if sw is None else sw)
    d -= shift[:, None]
    return ref[:, 0] + shift, _kept(mask, d)


def _pp_sums1(A, g=None, h=None, c=None, S=None, scratch=None):
    """``Σ_ij P_ij² g_i h_j`` for ``P = diag(a) - a a'/Σa``, without cancellation.

    ``P_ii = a_i c_i/S`` with ``c_i = Σ_{j≠i} a_j`` and ``P_ij = -a_i a_j/S``, so
    the sum is ``Σ_i a_i² g_i (h_i c_i² + Σ_{j≠i} a_j² h_j) / S²``: all terms
    have one sign, unlike the power-sum form ``Σa²g h - 2Σa³gh/S + ...``.
    ``g``, ``h`` None: all ones (``tr(PP)``), without the products by 1, which are exact.
    ``c``, ``S``: the leave-one-out sums and ``Σa``, when the caller has them;
    ``scratch``: an array like ``A`` that may be overwritten.
    """
    S = A.sum(axis=1) if S is None else S
    c = _leave_one_out(A) if c is None else c        # c: the caller's, when it has them
    a2 = A * A
    a2g = a2 if g is None else a2 * g
    a2h = a2 if h is None else a2 * h
    hc = c if h is None else h * c
    # a2g (hc c + loo(a2h)), accumulated in the buffer of loo(a2h) (x + y and x y are
    # commutative in floating point: the same numbers, two 8 MB arrays fewer at k = 10^6)
    t = _leave_one_out(a2h)
    t += np.multiply(hc, c, out=scratch)
    t *= a2g
    return t.sum(axis=1) / (S * S)


def _trace_p1(A, c=None, S=None, scratch=None):
    """``tr(P) = Σa - Σa²/Σa = Σ a_i c_i / Σa`` (c_i: sum of the other weights), stably
    (``c``, ``S = Σa``: the caller's, when it has them; ``scratch``: may be overwritten)."""
    ac = np.multiply(A, _leave_one_out(A) if c is None else c, out=scratch)
    return ac.sum(axis=1) / (A.sum(axis=1) if S is None else S)


class _Projection:
    """``P = W^½ M W^½`` with ``M = I - QQ'`` from the thin QR ``W^½X = QR``, for each group.

    Rows are sorted by decreasing weight before the Householder QR (Powell &
    Reid 1969; Cox & Higham 1998: row-wise stable). ``m`` is the diagonal of
    M, ``1 - h_i``. For a study whose weight dominates, ``h_i`` is within
    ``a_j/a_i`` of 1 and ``1 - h_i`` would lose every digit (a DL τ² of an
    Egger model off by 4% at a variance ratio of 1e17), so the at most p
    rows with ``m_i < DOMINANT`` are computed from the idempotence of M:
    ``m_i (1 - m_i) = Σ_{j≠i} (q_i·q_j)²``, a sum of squares of off-diagonal
    entries, each with full relative precision. Their residuals likewise
    come from ``X'W r = 0`` (:func:`_wls`), the way the intercept-only path
    centres at the dominant study. All O(k p²).
    """

    DOMINANT = 1e-3      # m_i below this: 1 - h_i has lost more than 3 digits

    def __init__(self, A, X):
        S = np.sqrt(A)[:, :, None] * X
        order = np.argsort(-A, axis=1, kind="stable")[:, :, None]
        Qs, self.R = np.linalg.qr(np.take_along_axis(S, order, axis=1))
        Q = np.empty_like(Qs)
        np.put_along_axis(Q, order, Qs, axis=1)
        self.A, self.X, self.Q = A, X, Q
        self.h = (Q * Q).sum(axis=2)
        p = X.shape[2]
        # Σh = p, so at most p rows have m < DOMINANT < 1/p: the p largest h
        self.top = np.argsort(-self.h, axis=1, kind="stable")[:, :p]                     # (G, p)
        # T[g, j, d] = q_j · q_top[d], with the entry of the row itself set to 0
        T = np.einsum("gkq,gdq->gkd", Q, np.take_along_axis(Q, self.top[:, :, None], axis=1))
        np.put_along_axis(T, self.top[:, None, :], 0.0, axis=1)
        self.T = T
        m = 1.0 - self.h
        m_top = np.take_along_axis(m, self.top, axis=1)
        self.dom = m_top < self.DOMINANT
        s = (T * T).sum(axis=1)                                   # Σ_{j≠i} (q_i·q_j)²
        with np.errstate(invalid="ignore"):
            m_exact = 2.0 * s / (1.0 + np.sqrt(np.maximum(1.0 - 4.0 * s, 0.0)))
        np.put_along_axis(m, self.top, np.where(self.dom, m_exact, m_top), axis=1)
        self.m = np.where(A > 0, m, 0.0)
        self.is_dom = np.zeros(A.shape, dtype=bool)
        np.put_along_axis(self.is_dom, self.top, self.dom, axis=1)

    def trace(self):
        """``tr(P) = Σ a_i m_i``."""
        return (self.A * self.m).sum(axis=1)

    def pp_sums(self, g, h):
        """``Σ_ij P_ij² g_i h_j`` with ``P_ij = √(a_i a_j) M_ij``, ``M_ij = -q_i·q_j`` (i ≠ j).

        Pairs of ordinary rows: ``Σ_kl (Q'D₁Q)_kl (Q'D₂Q)_kl`` minus their
        diagonal (``D₁ = diag(a g)``, ``D₂ = diag(a h)``, p×p products);
        pairs with a dominant row: from ``T`` directly; the diagonal from ``m``.
        """
        al, be = self.A * g, self.A * h
        Q, n = self.Q, ~self.is_dom
        aln, ben = np.where(n, al, 0.0), np.where(n, be, 0.0)
        B1 = np.einsum("gkp,gk,gkq->gpq", Q, aln, Q)
        B2 = np.einsum("gkp,gk,gkq->gpq", Q, ben, Q)
        ordinary = (B1 * B2).sum(axis=(1, 2)) - (aln * ben * self.h * self.h).sum(axis=1)
        al_t = np.where(self.dom, np.take_along_axis(al, self.top, axis=1), 0.0)    # (G, p)
        be_t = np.where(self.dom, np.take_along_axis(be, self.top, axis=1), 0.0)
        T2 = self.T * self.T
        # i dominant, j ordinary (both orders), then both dominant (i ≠ j)
        cross = (np.einsum("gd,gkd,gk->g", al_t, T2, ben) + np.einsum("gd,gkd,gk->g", be_t, T2, aln))
        be_dom = np.where(self.is_dom, be, 0.0)
        both = np.einsum("gd,gkd,gk->g", al_t, T2, be_dom)
        return (al * be * self.m * self.m).sum(axis=1) + ordinary + cross + both

    def logdet(self):
        """``log det(X'WX) = 2 Σ log |R_jj|``."""
        return 2.0 * np.log(np.abs(np.diagonal(self.R, axis1=1, axis2=2))).sum(axis=1)


def _wls(Y, A, mask, X, proj=None):
    """Weighted least squares ``β̂ = (X'WX)⁻¹X'Wy`` and residuals ``y - Xβ̂`` (metafor ``.invcalc`` + ``P``).

    From the QR of ``W^½X``, with one step of iterative refinement. The
    weighted residuals ``a_i r_i`` of dominant rows (see :class:`_Projection`)
    would be rounding noise times a huge weight; they are solved from
    ``X'W r = 0`` given the other rows' instead (for X = 1:
    ``a_i r_i = -Σ_{j≠i} a_j r_j``).
    """
    proj = _Projection(A, X) if proj is None else proj
    Q, R = proj.Q, proj.R
    sa = np.sqrt(A)

    def solve(resid):
        c = np.einsum("gkp,gk->gp", Q, sa * resid)
        return np.linalg.solve(R, c[:, :, None])[:, :, 0]

    beta = solve(Y)
    r = np.where(mask, Y - np.einsum("gkp,gp->gk", X, beta), 0.0)
    beta = beta + solve(r)
    r = np.where(mask, Y - np.einsum("gkp,gp->gk", X, beta), 0.0)
    if proj.dom.any():
        r = _dominant_residuals(r, A, X, proj)
    return beta, r


def _dominant_residuals(r, A, X, proj):
    """Residuals of dominant rows from ``X_D' u_D = -X_N' u_N`` with ``u = W r`` (consistent, d <= p)."""
    u = np.where(proj.is_dom, 0.0, A * r)
    b = np.einsum("gkp,gk->gp", X, u)                                       # X_N' u_N
    Xd = np.take_along_axis(X, proj.top[:, :, None], axis=1)                 # (G, d=p, p)
    Xd = np.where(proj.dom[:, :, None], Xd, 0.0)
    # normal equations of the consistent system, identity for non-dominant slots
    G = Xd @ np.swapaxes(Xd, 1, 2)
    eye = np.eye(Xd.shape[1])[None]
    keep = proj.dom[:, :, None] & proj.dom[:, None, :]
    G = np.where(keep, G, eye)
    rhs = np.where(proj.dom, -(Xd @ b[:, :, None])[:, :, 0], 0.0)
    u_dom = np.linalg.solve(G, rhs[:, :, None])[:, :, 0]
    a_top = np.take_along_axis(A, proj.top, axis=1)
    r_top = np.take_along_axis(r, proj.top, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_top = np.where(proj.dom, u_dom / a_top, r_top)
    r = r.copy()
    np.put_along_axis(r, proj.top, r_top, axis=1)
    return r


def _trace_p(A, X=None, proj=None):
    """``tr(P)``; for X = 1 the closed form :func:`_trace_p1`."""
    if X is None:
        return _trace_p1(A)
    return (_Projection(A, X) if proj is None else proj).trace()


def _pp_sums(A, g=None, h=None, X=None, proj=None):
    """``Σ_ij P_ij² g_i h_j`` (None: ones); for X = 1 the cancellation-free :func:`_pp_sums1`."""
    if X is None:
        return _pp_sums1(A, g, h)
    one = np.ones_like(A)
    return (_Projection(A, X) if proj is None else proj).pp_sums(
        one if g is None else g, one if h is None else h)


def generalized_q(Y, V, mask, tau2, X=None):
    """Generalised Q ``Σ w (y - Xβ̂)²`` with ``w = 1/(v + τ²)``, and its derivative in τ².

    Viechtbauer (2007), Stat Med 26:37; metafor ``.QE.func`` (``y'P y``). The
    derivative ``-y'PPy = -Σ w² (y - Xβ̂)²`` needs no term for β̂ because
    ``X'W(y - Xβ̂) = 0``.
    """
    W = _weights(V, tau2, mask)
    wr2 = np.empty_like(W)              # the scratch of the residuals, then W r r (one buffer)
    _, r = _residuals1(Y, W, mask, scratch=wr2) if X is None else _wls(Y, W, mask, X)
    np.multiply(W, r, out=wr2)
    wr2 *= r                            # (W r) r, in one buffer (the Q-profile CI calls this often)
    q = wr2.sum(axis=1)
    wr2 *= W
    return q, -wr2.sum(axis=1)


def _weights(V, tau2, mask):
    """``w = 1/(v + τ²)`` (0 in padded cells), in one new array."""
    W = V + np.asarray(tau2)[:, None]
    np.divide(1.0, W, out=W)
    return _kept(mask, W)


def wls_fit(Y, V, mask, tau2, X=None):
    """Coefficients, their covariance and the weighted RSS at ``w = 1/(v + τ²)``, per group.

    metafor rma.uni's ``beta = (X'WX)⁻¹X'Wy``, ``vb = (X'WX)⁻¹`` and
    ``Σ w (y - Xβ̂)²`` (the residual Q; at τ² = 0 metafor's QE). Shapes
    (groups, p), (groups, p, p), (groups,). For X = 1, ``μ̂ = Σwy/Σw`` and
    ``1/Σw`` as :func:`generalized_q` computes them; else from the QR of
    ``W^½X``: ``vb = R⁻¹R⁻ᵀ``.
    """
    W = _kept(mask, 1.0 / (V + np.asarray(tau2, dtype=float)[:, None]))
    if X is None:
        mu, r = _residuals1(Y, W, mask)
        return mu[:, None], (1.0 / W.sum(axis=1))[:, None, None], (W * r * r).sum(axis=1)
    proj = _Projection(W, X)
    beta, r = _wls(Y, W, mask, X, proj)
    R_inv = np.linalg.inv(proj.R)
    return beta, R_inv @ np.swapaxes(R_inv, 1, 2), (W * r * r).sum(axis=1)


def _traces(A, V, X=None):
    """Traces of ``P`` (weights ``a``) needed by metafor's se.tau2 formulas.

    Returns ``tr(P)``, ``sum(P*P)``, ``tr(PVPV)`` (= metafor ``sum(PV * t(PV))``)
    and ``sum(PV * P)``: the algebra of metafor's matrix expressions
    (:func:`_pp_sums`), without k×k matrices.
    """
    proj = None if X is None else _Projection(A, X)
    return (_trace_p(A, X, proj), _pp_sums(A, None, None, X, proj), _pp_sums(A, V, V, X, proj),
            _pp_sums(A, None, V, X, proj))


def typical_variance(V, mask, X=None):
    """metafor's "typical" within-study variance ``s² = (k-1) Σw / ((Σw)² - Σw²)``, w = 1/v.

    Higgins & Thompson (2002); metafor ``vt`` with ``i2def="1"``: (k-p)/tr(P)
    at w = 1/v (with moderators ``X``: p columns and their P).
    ``(Σw)² - Σw² = Σ_i w_i Σ_{j≠i} w_j`` is summed in that form because the
    difference loses every digit when one weight is 1e15 times the others
    (I² then came out 0). Weights are scaled by their maximum against
    overflow (P is linear in W). NaN for k <= p.
    """
    W = np.where(mask, 1.0 / V, 0.0)
    m = W.max(axis=1, keepdims=True)
    k = mask.sum(axis=1)
    p = _p(X)
    with np.errstate(divide="ignore", invalid="ignore"):
        Wn = W / m
        return np.where(k > p, (k - p) / (m[:, 0] * _trace_p(Wn, X)), np.nan)


# ---------------------------------------------------------------------------
# closed-form estimators
# ---------------------------------------------------------------------------

def _raw_dl(Y, V, mask, k, X=None):
    W = np.where(mask, 1.0 / V, 0.0)
    q, _ = generalized_q(Y, V, mask, np.zeros(Y.shape[0]), X)
    return (q - (k - _p(X))) / _trace_p(W, X)


def _ols_rss_tr_pv(Y, V, mask, k, X):
    """HE's ``y'Py`` and ``tr(PV)`` with P the ordinary least-squares residual maker."""
    if X is None:
        ybar = Y.sum(axis=1) / k
        rss = (np.where(mask, Y - ybar[:, None], 0.0) ** 2).sum(axis=1)
        return rss, V.sum(axis=1, where=mask) * (1.0 - 1.0 / k)
    A = mask.astype(float)
    proj = _Projection(A, X)
    _, r = _wls(Y, A, mask, X, proj)
    return (r * r).sum(axis=1), (V * proj.m).sum(axis=1)


def _raw_he(Y, V, mask, k, X=None):
    rss, tr_pv = _ols_rss_tr_pv(Y, V, mask, k, X)
    return (rss - tr_pv) / (k - _p(X))


def _raw_hs(Y, V, mask, k, X=None):
    q, _ = generalized_q(Y, V, mask, np.zeros(Y.shape[0]), X)
    return (q - k) / np.where(mask, 1.0 / V, 0.0).sum(axis=1)


def _sj_start(Y, mask, k):
    # metafor: var(ymci) * (k-1)/k, the variance with divisor k
    ybar = Y.sum(axis=1) / k
    return (np.where(mask, Y - ybar[:, None], 0.0) ** 2).sum(axis=1) / k


def _raw_sj(Y, V, mask, k, X=None):
    tau0 = _sj_start(Y, mask, k)
    q, _ = generalized_q(Y, V, mask, tau0, X)
    return tau0 * q / (k - _p(X))


# ---------------------------------------------------------------------------
# root finding on the generalised Q (PM, Q-profile CI)
# ---------------------------------------------------------------------------

def solve_q(Y, V, mask, target, lo, hi, *, maxiter=200, rtol=1e-13, X=None, at_lo=None):
    """Solve ``Q(τ²) = target`` for τ² in ``[lo, hi]``, row by row, in parallel.

    Q(τ²) decreases in τ² (Viechtbauer 2007), so the caller guarantees
    ``Q(lo) >= target >= Q(hi)``. Newton steps (Q' in closed form) are taken
    when they stay inside the current bracket, bisection otherwise; each row
    stops when its step or bracket is below ``rtol`` relative. This plays
    the role of metafor's ``uniroot()`` calls, solved to machine precision.
    ``at_lo``: ``generalized_q`` at ``lo`` (Q and its derivative, every row) when the
    caller has it: the first step starts from it. Returns (root, converged).
    """
    lo = np.array(lo, dtype=float)
    hi = np.array(hi, dtype=float)
    target = np.broadcast_to(np.asarray(target, dtype=float), lo.shape).copy()
    x = lo.copy()
    done = np.zeros(lo.shape, dtype=bool)
    for _ in range(maxiter):
        idx = np.nonzero(~done)[0]
        if idx.size == 0:
            break
        rows = idx if idx.size < lo.size else slice(None)      # all rows: no copies of Y, V
        if at_lo is not None:           # the first step, every row at x = lo
            (q, dq), at_lo = at_lo, None
        else:
            q, dq = generalized_q(Y[rows], V[rows], mask[rows], x[idx], _rows(X, rows))
        f = q - target[idx]
        xi, loi, hii = x[idx], lo[idx], hi[idx]
        # keep the bracket: f > 0 means the root lies to the right
        loi = np.where(f > 0, xi, loi)
        hii = np.where(f < 0, xi, hii)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = xi - f / dq
        inside = np.isfinite(newton) & (newton > loi) & (newton < hii)
        xnew = np.where(inside, newton, 0.5 * (loi + hii))
        xnew = np.where(f == 0, xi, xnew)
        step = np.abs(xnew - xi)
        scale = np.maximum(np.abs(xnew), 1e-300)
        stop = (f == 0) | (step <= rtol * scale) | (hii - loi <= rtol * scale)
        x[idx], lo[idx], hi[idx] = xnew, loi, hii
        done[idx] = stop
    return x, done


def _rows(X, idx):
    return None if X is None else X[idx]


def _pm_upper_limit(Y, mask):
    """metafor's ``tau2.max = max(100, 10 * mad(yi)^2)`` (mad with constant 1.4826)."""
    Ym = np.where(mask, Y, np.nan)
    med = np.nanmedian(Ym, axis=1)
    mad = 1.4826 * np.nanmedian(np.abs(Ym - med[:, None]), axis=1)
    return np.maximum(100.0, 10.0 * mad * mad)


def _tau2_pm(Y, V, mask, k, X=None):
    """Paule-Mandel: ``Q(τ²) = k - p`` (metafor: uniroot on [0, tau2.max]).

    Where metafor would stop with "tau2.max too low" (Q(tau2.max) > k-1) the
    upper limit is doubled until it brackets the root, which always exists
    since Q(τ²) -> 0 as τ² grows.
    """
    G = Y.shape[0]
    p = _p(X)
    target = (k - p).astype(float)
    q0, _ = generalized_q(Y, V, mask, np.zeros(G), X)
    tau2 = np.zeros(G)
    need = (q0 >= target) & (k > p)
    if not need.any():
        return tau2
    idx = np.nonzero(need)[0]
    Xi = _rows(X, idx)
    hi = _pm_upper_limit(Y[idx], mask[idx])
    for _ in range(2000):
        qh, _ = generalized_q(Y[idx], V[idx], mask[idx], hi, Xi)
        low = qh > target[idx]
        if not low.any():
            break
        hi = np.where(low, 2.0 * hi, hi)
    root, _ = solve_q(Y[idx], V[idx], mask[idx], target[idx], np.zeros(idx.size), hi, X=Xi)
    tau2[idx] = root
    return tau2


# ---------------------------------------------------------------------------
# Fisher scoring (ML, REML, EB)
# ---------------------------------------------------------------------------

def _score(method, Y, V, mask, k, tau2, X=None):
    """Score-like function U(τ²) and the Fisher information metafor divides it by.

    metafor rma.uni's Fisher-scoring increment is ``U / info`` with
    REML ``U = y'PPy - tr(P)``, ``info = tr(PP)``; ML ``U = y'PPy - Σw``,
    ``info = Σw²``; EB ``U = Q(τ²) k/(k-p) - k``, ``info = Σw``.
    """
    W = _weights(V, tau2, mask)
    S = W.sum(axis=1)
    proj = None if X is None else _Projection(W, X)
    scratch = np.empty_like(W)          # reused by every product below that is summed at once
    _, r = _residuals1(Y, W, mask, S, scratch) if X is None else _wls(Y, W, mask, X, proj)
    if method == "EB":
        return (W * r * r).sum(axis=1) * k / (k - _p(X)) - k, S
    PY = np.multiply(W, r, out=r)                         # P y, in r's buffer (r is ours, used no more)
    PY *= PY
    ypy = PY.sum(axis=1)                                  # y'PPy
    if method == "ML":
        return ypy - S, (W * W).sum(axis=1)
    # tr(P) and tr(PP) as same-signed sums: the power-sum forms cancel to 0
    # (a Fisher step of -inf) when one weight is ~1e10 times the others
    if X is None:       # both sums use the same leave-one-out sums of W: computed once
        c = _leave_one_out(W)
        return ypy - _trace_p1(W, c, S, scratch), _pp_sums1(W, None, None, c, S, scratch)
    return ypy - _trace_p(W, X, proj), _pp_sums(W, None, None, X, proj)


_MAX_HALVINGS = 2200   # halving any finite double 2200 times gives 0 (2^-2200 < 2^-1074)


def _halve_to_nonnegative(tau2, adj):
    """metafor: ``while (tau2 + adj < tau2.min) adj <- adj/2`` with tau2.min = 0.

    The caller passes finite steps only (metafor loops for ever on -Inf);
    the loop is bounded anyway, and a step still too long then is cut to
    land on 0.
    """
    adj = np.where(np.isnan(adj), 0.0, adj)
    # from exactly 0 metafor halves a negative step until it underflows to 0
    adj = np.where((tau2 <= 0) & (adj < 0), 0.0, adj)
    bad = tau2 + adj < 0
    for _ in range(_MAX_HALVINGS):
        if not bad.any():
            break
        adj = np.where(bad, adj / 2.0, adj)
        bad = tau2 + adj < 0
    return np.where(bad, -tau2, adj)


def _loglik(method, Y, V, mask, tau2, X=None):
    """ML / REML log-likelihood up to constants common to all τ² (metafor ll0check).

    REML subtracts ``½ log det(X'WX)``: ``½ log Σw`` for X = 1, else
    ``Σ log |R_jj|`` from the QR of ``W^½X``.
    """
    vt = V + tau2[:, None]
    W = _kept(mask, 1.0 / vt)
    proj = None if X is None else _Projection(W, X)
    _, r = _residuals1(Y, W, mask) if X is None else _wls(Y, W, mask, X, proj)
    wrr = W * r
    wrr *= r                                  # (W r) r, one buffer
    rss = wrr.sum(axis=1)
    vt = vt if mask.all() else np.where(mask, vt, 1.0)
    ll = -0.5 * np.log(vt, out=vt).sum(axis=1) - 0.5 * rss
    if method == "REML":
        if X is None:
            ll = ll - 0.5 * np.log(W.sum(axis=1))
        else:
            ll = ll - 0.5 * proj.logdet()
    return ll


def _fisher_scoring_pass(method, Y, V, mask, k, tol, maxiter, X=None, s2=None):
    """metafor's Fisher scoring from the truncated HE estimate, all rows together
    (``s2``: ``typical_variance(V, mask)`` when the caller has it)."""
    G = Y.shape[0]
    p = _p(X)
    with np.errstate(divide="ignore", invalid="ignore"):
        start = np.maximum(0.0, _raw_he(Y, V, mask, np.maximum(k, p + 1), X))
    tau2 = np.where(k > p, start, 0.0)
    s2 = typical_variance(V, mask) if s2 is None else s2
    iterations = np.zeros(G, dtype=int)
    converged = k <= p
    active = ~converged
    for _ in range(maxiter):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        old = tau2[idx]
        rows = idx if idx.size < G else slice(None)      # all rows: no copies of Y, V, mask
        u, info = _score(method, Y[rows], V[rows], mask[rows], k[rows], old, _rows(X, rows))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            adj = u / info
        # a non-finite step (zero or overflowing information) cannot be
        # halved into range: leave the row unconverged for the root finder
        broken = ~np.isfinite(adj)
        new = old + _halve_to_nonnegative(old, np.where(broken, 0.0, adj))
        tau2[idx] = new
        iterations[idx] += 1
        step = np.abs(new - old)
        # The absolute floor tol·1e-4·s² lets steps creeping down to the
        # boundary stop; it must not stop an upward climb (u > 0) whose steps
        # are tiny only because Σw is huge at small τ² (EB with vi ratio 1e16
        # "converged" at τ² = 1e-18 beside a root at 2.4e-3).
        done = (step <= tol * (new + 1e-4 * s2[idx])) & ((u <= 0) | (step <= tol * new))
        converged[idx[done & ~broken]] = True
        active[idx[done | broken]] = False
    return tau2, iterations, converged


def _score_root(method, Y, V, mask, k, x0, maxiter, rtol=1e-13, X=None):
    """Solve U(τ²) = 0 on τ² >= 0 near ``x0``, the last Fisher-scoring iterate.

    The fixed point of Fisher scoring is a root of U (or 0 where U < 0 at
    0). The bracket is grown from ``x0`` in the direction the score points
    (doubling upwards, halving towards 0), so the root found is the one the
    iteration was circling or creeping towards, not another stationary point
    of a multimodal likelihood. Then Illinois regula falsi with a bisection
    step whenever the bracket does not halve. Returns (tau2, iterations,
    converged).
    """
    G = Y.shape[0]
    s2 = typical_variance(V, mask)
    x0 = np.maximum(np.asarray(x0, dtype=float), 1e-8 * s2)
    u0, _ = _score(method, Y, V, mask, k, x0, X)
    lo = np.where(u0 > 0, x0, 0.0)
    hi = np.where(u0 > 0, np.inf, x0)
    flo = np.where(u0 > 0, u0, np.nan)
    fhi = np.where(u0 > 0, np.nan, u0)
    # grow upwards where the score is positive
    probe = x0.copy()
    up = u0 > 0
    for _ in range(2000):
        if not up.any():
            break
        probe = np.where(up, 2.0 * probe + 1e-4 * s2, probe)
        f, _ = _score(method, Y, V, mask, k, probe, X)
        lo = np.where(up & (f > 0), probe, lo)
        flo = np.where(up & (f > 0), f, flo)
        hit = up & (f <= 0)
        hi = np.where(hit, probe, hi)
        fhi = np.where(hit, f, fhi)
        up = up & (f > 0)
    # shrink towards 0 where the score is negative
    probe = x0.copy()
    down = u0 <= 0
    for _ in range(60):
        if not down.any():
            break
        probe = np.where(down, 0.5 * probe, probe)
        f, _ = _score(method, Y, V, mask, k, probe, X)
        hit = down & (f > 0)
        lo = np.where(hit, probe, lo)
        flo = np.where(hit, f, flo)
        miss = down & (f <= 0)
        hi = np.where(miss, probe, hi)
        fhi = np.where(miss, f, fhi)
        down = miss
    tau2 = np.zeros(G)
    iterations = np.zeros(G, dtype=int)
    converged = np.zeros(G, dtype=bool)
    if down.any():
        # still no positive score within 1e-18 x0: the estimate is the boundary 0
        # unless the score is positive at 0 itself (a root in (0, tiny])
        f0, _ = _score(method, Y, V, mask, k, np.zeros(G), X)
        at_zero = down & (f0 <= 0)
        converged |= at_zero
        lo = np.where(down & ~at_zero, 0.0, lo)
        flo = np.where(down & ~at_zero, f0, flo)
    bracketed = np.isfinite(hi) & ~converged
    idx = np.nonzero(bracketed)[0]
    if idx.size == 0:
        return tau2, iterations, converged
    Yi, Vi, Mi, ki, Xi = Y[idx], V[idx], mask[idx], k[idx], _rows(X, idx)
    lo, hi, flo, fhi = lo[idx], hi[idx], flo[idx], fhi[idx]
    done = np.zeros(idx.size, dtype=bool)
    root = 0.5 * (lo + hi)
    side = np.zeros(idx.size, dtype=int)        # Illinois: which end moved last
    width = hi - lo
    its = np.zeros(idx.size, dtype=int)
    for _ in range(maxiter):
        act = np.nonzero(~done)[0]
        if act.size == 0:
            break
        l, h, fl, fh = lo[act], hi[act], flo[act], fhi[act]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (l * fh - h * fl) / (fh - fl)
        halve = (h - l) > 0.5 * width[act]
        x = np.where(halve | ~np.isfinite(x) | (x <= l) | (x >= h), 0.5 * (l + h), x)
        width[act] = h - l
        fx, _ = _score(method, Yi[act], Vi[act], Mi[act], ki[act], x, _rows(Xi, act))
        right = fx > 0                                      # root lies above x
        # Illinois: halve the value kept at the end that did not move twice in a row
        flo[act] = np.where(right, fx, np.where(side[act] == -1, 0.5 * fl, fl))
        fhi[act] = np.where(right, np.where(side[act] == 1, 0.5 * fh, fh), fx)
        lo[act] = np.where(right, x, l)
        hi[act] = np.where(right, h, x)
        side[act] = np.where(right, 1, -1)
        root[act] = x
        its[act] += 1
        done[act] = (fx == 0) | (hi[act] - lo[act] <= rtol * np.maximum(x, 1e-300))
    tau2[idx] = root
    iterations[idx] = its
    converged[idx] = done
    return tau2, iterations, converged


def _fisher_scoring(method, Y, V, mask, k, tol, maxiter, X=None, s2=None):
    """metafor's Fisher scoring; where it fails, the same estimate by root finding.

    For some data (0.2-2% of pools we simulated with 4-30 studies) the full Fisher-scoring
    step oscillates without end, or approaches a maximum at or near 0 so
    slowly that it needs more than metafor's default 100 iterations; metafor
    then stops with an error (its help page suggests ``stepadj`` or more
    iterations). Groups not converged after 100 steps are solved here by
    root finding on the score U(τ²) (at most ``maxiter`` steps) around the
    last iterate, i.e. for the point Fisher scoring was converging to (or
    circling); ``rescued`` marks them. metafor's ll0check follows as usual.
    Also returns ``s2`` (``typical_variance``, X = 1), which callers report too.
    """
    s2 = typical_variance(V, mask) if s2 is None else s2        # X = 1's, as both uses want
    tau2, iterations, converged = _fisher_scoring_pass(method, Y, V, mask, k, tol,
                                                       min(maxiter, METAFOR_MAXITER), X, s2)
    rescued = np.zeros(Y.shape[0], dtype=bool)
    if not converged.all():
        idx = np.nonzero(~converged)[0]
        t2, it2, conv2 = _score_root(method, Y[idx], V[idx], mask[idx], k[idx], tau2[idx], maxiter,
                                     X=_rows(X, idx))
        tau2[idx], iterations[idx], converged[idx] = t2, iterations[idx] + it2, conv2
        rescued[idx] = conv2
    G = Y.shape[0]
    # Step halving approaches a maximum at the boundary only geometrically and
    # stops at some tiny positive τ² (metafor: below its threshold); where the
    # score at 0 points down, that limit is exactly 0, so report 0.
    p = _p(X)
    tiny = converged & (k > p) & (tau2 > 0) & (tau2 <= 1e-8 * s2)
    if tiny.any():
        idx = np.nonzero(tiny)[0]
        u0, _ = _score(method, Y[idx], V[idx], mask[idx], k[idx], np.zeros(idx.size), _rows(X, idx))
        tau2[idx[u0 <= 0]] = 0.0
    ll0_reset = np.zeros(G, dtype=bool)
    if method in ("ML", "REML"):
        # metafor's ll0check: Fisher scoring may stop at a local maximum
        check = converged & (tau2 > 0) & (k > p)
        if check.any():
            idx = np.nonzero(check)[0]
            rows = idx if idx.size < G else slice(None)      # all rows: no copies of Y, V, mask
            Yc, Vc, Mc, Xc = Y[rows], V[rows], mask[rows], _rows(X, rows)
            ll0 = _loglik(method, Yc, Vc, Mc, np.zeros(idx.size), Xc)
            ll = _loglik(method, Yc, Vc, Mc, tau2[idx], Xc)
            reset = ll0 - ll > 1e-10
            tau2[idx[reset]] = 0.0
            ll0_reset[idx[reset]] = True
    return tau2, iterations, converged, ll0_reset, rescued, s2


# ---------------------------------------------------------------------------
# se(τ²), as metafor rma.uni
# ---------------------------------------------------------------------------

def _se_tau2(method, Y, V, mask, k, tau2, X=None):
    """metafor rma.uni's ``se.tau2`` for every estimator, with ``k - p`` degrees of freedom."""
    km1 = (k - _p(X)).astype(float)
    t = np.maximum(tau2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method in ("DL", "HS"):
            A = np.where(mask, 1.0 / V, 0.0)
            proj = None if X is None else _Projection(A, X)
            tr_p, sum_pp = _trace_p(A, X, proj), _pp_sums(A, None, None, X, proj)
            inner = np.sqrt(2.0 * km1 + 4.0 * t * tr_p + 2.0 * t * t * sum_pp)
            se = inner / (tr_p if method == "DL" else A.sum(axis=1))
        elif method == "HE":
            A = mask.astype(float)
            _, _, tr_pvpv, _ = _traces(A, V, X)
            _, tr_pv = _ols_rss_tr_pv(Y, V, mask, k, X)
            se = np.sqrt(2.0 * tr_pvpv + 4.0 * t * tr_pv + 2.0 * t * t * km1) / km1
        elif method == "SJ":
            tau0 = _sj_start(Y, mask, k)
            A = np.where(mask, 1.0 / (V + tau0[:, None]), 0.0)
            _, sum_pp, tr_pvpv, sum_pvp = _traces(A, V, X)
            se = tau0 / km1 * np.sqrt(2.0 * tr_pvpv + 4.0 * t * sum_pvp + 2.0 * t * t * sum_pp)
        elif method == "ML":
            W = np.where(mask, 1.0 / (V + t[:, None]), 0.0)
            se = np.sqrt(2.0 / (W * W).sum(axis=1))
        elif method == "REML":
            A = np.where(mask, 1.0 / (V + t[:, None]), 0.0)
            se = np.sqrt(2.0 / _pp_sums(A, None, None, X))
        elif method in ("EB", "PM"):
            W = np.where(mask, 1.0 / (V + t[:, None]), 0.0)
            se = np.sqrt(2.0 * k * k / km1) / W.sum(axis=1)
        else:
            se = np.full(Y.shape[0], np.nan)
    return np.where(k > _p(X), se, np.nan)


# ---------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------

def check_method(method) -> str:
    m = str(method).upper()
    if registry.is_method(m) and registry.method(m).inverse_variance:
        return m
    if registry.is_method(m):
        raise UsageError(f"method {m} is not an inverse-variance model; use msc_meta.pooling.mh")
    raise UsageError(f"unknown method {method!r}: choose one of "
                     f"{', '.join(registry.methods(inverse_variance=True))}")


def estimate_tau2(method, Y, V, mask=None, *, X=None, tol=DEFAULT_TOL,
                  maxiter=DEFAULT_MAXITER) -> Tau2Estimate:
    """Estimate τ² for every group with ``method`` (FE gives 0); never raises on non-convergence.

    ``X`` (optional, ``(groups, kmax, p)`` or ``(k, p)``, of full column rank
    in every group) is the design of a meta-regression, metafor
    ``rma(yi, vi, mods=)``: τ² is then the residual heterogeneity. Without
    it, or with one column of ones, the model is intercept-only.
    Groups with k <= p (k = 1 without moderators) get τ² = 0, as metafor
    (which switches the estimator off).
    """
    method = check_method(method)
    Y, V, mask, k = as_batch(Y, V, mask)
    X = as_design(X, Y, mask)
    p = _p(X)
    G = Y.shape[0]
    ks = np.maximum(k, p + 1)   # keeps k <= p rows free of 0/0; their τ² is set to 0 below
    iterations = np.zeros(G, dtype=int)
    converged = np.ones(G, dtype=bool)
    ll0_reset = np.zeros(G, dtype=bool)
    rescued = np.zeros(G, dtype=bool)
    s2 = None
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "FE":
            raw = np.zeros(G)
        elif method == "DL":
            raw = _raw_dl(Y, V, mask, ks, X)
        elif method == "HE":
            raw = _raw_he(Y, V, mask, ks, X)
        elif method == "HS":
            raw = _raw_hs(Y, V, mask, ks, X)
        elif method == "SJ":
            raw = _raw_sj(Y, V, mask, ks, X)
        elif method == "PM":
            raw = _tau2_pm(Y, V, mask, k, X)
        else:
            raw, iterations, converged, ll0_reset, rescued, s2 = _fisher_scoring(method, Y, V, mask, k,
                                                                                  tol, maxiter, X)
    raw = np.where(k > p, raw, 0.0)
    truncated = raw < 0
    tau2 = np.maximum(raw, 0.0)
    messages = tuple(
        None if ok else (f"{method} did not converge in {maxiter} iterations (Fisher scoring, then root "
                         f"finding on the score); {registry.method(method).fallback}")
        for ok in converged
    )
    tau2 = np.where(converged, tau2, np.nan)
    se = np.full(G, np.nan) if method == "FE" else _se_tau2(method, Y, V, mask, ks, tau2, X)
    se = np.where(k > p, se, np.nan)
    return Tau2Estimate(method=method, tau2=tau2, se_tau2=se, iterations=iterations,
                        converged=converged, messages=messages, ll0_reset=ll0_reset,
                        truncated=truncated & converged, rescued=rescued, s2=s2)


def _public(method, Y, V, mask, **kw):
    est = estimate_tau2(method, Y, V, mask, **kw)
    if not est.converged.all():
        bad = int(np.nonzero(~est.converged)[0][0])
        where = "" if np.ndim(Y) == 1 else f" (group {bad + 1})"
        raise ComputationError(est.messages[bad] + where)
    return _scalar_if_1d(Y, est.tau2)


def tau2_dl(Y, V, mask=None):
    """DerSimonian-Laird τ², truncated at 0 (metafor ``method="DL"``)."""
    return _public("DL", Y, V, mask)


def tau2_he(Y, V, mask=None):
    """Hedges (HE) τ², truncated at 0 (metafor ``method="HE"``)."""
    return _public("HE", Y, V, mask)


def tau2_hs(Y, V, mask=None):
    """Hunter-Schmidt τ², truncated at 0 (metafor ``method="HS"``)."""
    return _public("HS", Y, V, mask)


def tau2_sj(Y, V, mask=None):
    """Sidik-Jonkman τ² (metafor ``method="SJ"``, one step from Σ(y-ȳ)²/k)."""
    return _public("SJ", Y, V, mask)


def tau2_pm(Y, V, mask=None):
    """Paule-Mandel τ² (metafor ``method="PM"``)."""
    return _public("PM", Y, V, mask)


def tau2_reml(Y, V, mask=None, *, tol=DEFAULT_TOL, maxiter=DEFAULT_MAXITER):
    """REML τ² by Fisher scoring (metafor ``method="REML"``); ComputationError if it does not converge."""
    return _public("REML", Y, V, mask, tol=tol, maxiter=maxiter)


def tau2_ml(Y, V, mask=None, *, tol=DEFAULT_TOL, maxiter=DEFAULT_MAXITER):
    """ML τ² by Fisher scoring (metafor ``method="ML"``); ComputationError if it does not converge."""
    return _public("ML", Y, V, mask, tol=tol, maxiter=maxiter)


def tau2_eb(Y, V, mask=None, *, tol=DEFAULT_TOL, maxiter=DEFAULT_MAXITER):
    """Empirical Bayes τ² (metafor ``method="EB"``); equals PM for the intercept-only model."""
    return _public("EB", Y, V, mask, tol=tol, maxiter=maxiter)


# the estimator of each random-effects method of the registry, by name (tau2_reml, ...)
TAU2_FUNCTIONS = {name: globals()[f"tau2_{name.lower()}"] for name in registry.methods(kind="random")}
