"""Tail probabilities of the normal and Poisson laws, element-wise.

From `scipy.special` rather than `scipy.stats`: the same functions, without a second of importing distributions the
analysis never uses (every CLI run pays an import).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, pdtrc


def normal_sf(z: np.ndarray | float) -> np.ndarray:
    """P(Z > z) for a standard normal Z."""
    return ndtr(-np.asarray(z, dtype=float))


def poisson_at_least(count: np.ndarray | float, mean: np.ndarray | float) -> np.ndarray:
    """P(X >= count) for X ~ Poisson(mean): 1 when count <= 0; a fractional count counts as its floor plus one, as
    `scipy.stats.poisson.sf(count - 1, mean)` reads it."""
    above = np.floor(np.asarray(count, dtype=float) - 1)
    return np.where(above < 0, 1.0, pdtrc(np.maximum(above, 0), mean))
