"""Immutable result objects of the pooling estimators.

``PoolResult`` holds the numbers of one fitted model, on the analysis scale
(log RR, logit, ...) and back-transformed to the natural scale, with names
that match the JSON keys of ``shared/cli-contract.md``. It knows nothing of
study labels or of the table it came from; ``msc_meta.pooling.analysis``
adds those.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class PoolResult:
    measure: str                 # PR PLO PFT PAS RR OR RD
    method: str                  # FE MH PETO DL REML ML PM HE SJ HS EB
    k: int                       # studies pooled
    theta: float                 # pooled effect, analysis scale
    se: float
    theta_ci_low: float          # CI, analysis scale
    theta_ci_high: float
    estimate: float              # pooled effect, natural scale
    ci_low: float
    ci_high: float
    stat: float                  # z, or t under HKSJ
    pval: float
    tau2: float                  # 0 for FE / MH / PETO
    tau: float
    i2: float                    # percent
    h2: float
    q: float
    q_df: int
    q_pval: float
    weights: tuple[float, ...]   # percent, in the order of the input studies
    level: float = 95.0
    test: str = "z"              # "z" or "t"
    df: float | None = None      # t degrees of freedom when test == "t"
    hksj: bool = False
    random: bool = False         # random-effects model?
    se_tau2: float | None = None
    theta_pi_low: float | None = None   # prediction interval, analysis scale
    theta_pi_high: float | None = None
    pi_low: float | None = None         # prediction interval, natural scale
    pi_high: float | None = None
    pi_method: str | None = None        # "hts", "z" or "t" (z under HKSJ)
    tau2_ci_low: float | None = None    # Q-profile CI (metafor confint())
    tau2_ci_high: float | None = None
    i2_ci_low: float | None = None
    i2_ci_high: float | None = None
    h2_ci_low: float | None = None
    h2_ci_high: float | None = None
    iterations: int | None = None       # iterative tau² estimators
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        """Plain-JSON dictionary (NaN and inf become None)."""
        return jsonable(asdict(self))


_NAMES = None


def build_results(columns: dict, n: int) -> list:
    """``n`` PoolResults from ``columns`` (field -> list of n values, every field given).

    The same objects ``PoolResult(**fields)`` makes, without its generated
    ``__init__`` (one frozen-attribute call per field): many small analyses
    (``--by``, ``export --all``) build two results each.
    """
    global _NAMES
    if _NAMES is None:
        from dataclasses import fields

        _NAMES = tuple(f.name for f in fields(PoolResult))
    if set(columns) != set(_NAMES):
        raise ValueError(f"build_results needs every PoolResult field; got {sorted(columns)}")
    new = object.__new__
    out = []
    for values in zip(*(columns[name] for name in _NAMES)):
        result = new(PoolResult)
        result.__dict__.update(zip(_NAMES, values))
        out.append(result)
    return out if n else []


def jsonable(value):
    """Plain JSON value: numpy scalars unwrapped, NaN and inf as None, containers walked."""
    if isinstance(value, dict):
        return {key: jsonable(v) for key, v in value.items()}
    if isinstance(value, (tuple, list)):
        if len(value) > 64 and all(type(v) is float for v in value):
            # a long run of floats (the weights of 10^6 studies): NaN and inf found at C speed
            return [v if math.isfinite(v) else None for v in value] \
                if not all(map(math.isfinite, value)) else list(value)
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
