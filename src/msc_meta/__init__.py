"""msc-meta: meta-analysis of MSC therapy outcomes in Crohn's disease.

The package is layered so data flows one way::

    data (schema, loading, validation) -> effects (per-study effect sizes)
    -> pooling (estimators, immutable results) -> report / plot -> cli

Heavy modules (pandas, scipy.stats, matplotlib) are imported lazily so that
the command line starts fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "pool_many"]


def __getattr__(name):
    # Lazy: importing msc_meta must not import numpy/pandas.
    if name == "pool_many":
        from msc_meta.pooling.batch import pool_many

        return pool_many
    raise AttributeError(f"module 'msc_meta' has no attribute {name!r}")
