"""Next-vector prediction: given the vectors of the units read so far, predict the next one.

- :mod:`keff.predict.windows`: (context, next unit) windows over documents of unit vectors;
- :mod:`keff.predict.baselines`: copy-last, context mean, recency-weighted mean, ridge on the
  stacked context, kNN transition (registry :data:`PREDICTORS`);
- :mod:`keff.predict.protocol`: retrieval scoring (pool of held-out units without the context,
  rank within the document, cosine, margin over the previous unit);
- :mod:`keff.predict.models`: trained predictors (GRU, attention memory, mixture of context;
  torch for training, numpy at inference);
- :mod:`keff.predict.evaluate`: all of them on held-out documents, with the order gates.
"""

from keff.predict.baselines import (
    PREDICTORS,
    ContextMean,
    CopyLast,
    KNNTransition,
    Predictor,
    RecencyMean,
    RidgeContext,
    load_predictor,
)
from keff.predict.models import SequencePredictor
from keff.predict.protocol import METRICS, score_predictions
from keff.predict.windows import Windows, make_windows

__all__ = [
    "METRICS",
    "PREDICTORS",
    "ContextMean",
    "CopyLast",
    "KNNTransition",
    "Predictor",
    "RecencyMean",
    "RidgeContext",
    "SequencePredictor",
    "Windows",
    "load_predictor",
    "make_windows",
    "score_predictions",
]
