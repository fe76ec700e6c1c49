"""Tail probabilities of the normal and Poisson laws, element-wise.

From `scipy.special` rather than `scipy.stats`: the same functions, without a second of importing distributions the
analysis never uses (every CLI run pays an import). Imported where they are used, as the analysis' other tails
(`rootcause.combined_z`, `shifts.surge_z`) are: its 0.2 s import is paid by the commands that read a tail, not by
those that only import a module beside one (`report`, `templates`).
"""

from __future__ import annotations

import numpy as np


def normal_sf(z: np.ndarray | float) -> np.ndarray:
    """P(Z > z) for a standard normal Z."""
    from scipy.special import ndtr

    return ndtr(-np.asarray(z, dtype=float))


def poisson_at_least(count: np.ndarray | float, mean: np.ndarray | float) -> np.ndarray:
    """P(X >= count) for X ~ Poisson(mean): 1 when count <= 0; a fractional count counts as its floor plus one, as
    `scipy.stats.poisson.sf(count - 1, mean)` reads it."""
    from scipy.special import pdtrc

    above = np.floor(np.asarray(count, dtype=float) - 1)
    return np.where(above < 0, 1.0, pdtrc(np.maximum(above, 0), mean))
