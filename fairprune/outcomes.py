"""``Outcomes``: what per-sample predictions say. Torch-free, so the results store (and the
dashboard pages that read it) never import torch to decode stored predictions."""

from __future__ import annotations

import numpy as np


class Outcomes:
    """What per-sample predictions say, for any class with ``y_true``, ``y_pred`` and ``probs``
    (fresh ``fairprune.evaluate.Predictions`` and the results store's stored ones alike)."""

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: prediction equals the label."""
        return self.y_pred == self.y_true

    @property
    def confidence_true(self) -> np.ndarray:
        """(N,) probability the model gives the true class."""
        return self.probs[np.arange(len(self.y_true)), self.y_true]
