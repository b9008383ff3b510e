"""Adapters over frozen encoders: small heads trained with InfoNCE on cached vectors.

- :class:`QueryAdapter` (map kind ``"adapter"``): a head on the query side only; applies wherever
  keff applies a query map.
- :class:`AsymAdapter`: a query head and a document head; the document head transforms stored
  document vectors once.

Heads: ``linear`` (identity-initialised), ``lowrank`` (residual), ``mlp`` (small residual MLP).
Training (torch) lives in :mod:`keff.train.infonce`; inference is numpy. Importing this package
registers :class:`QueryAdapter` in :data:`keff.maps.MAPS`.
"""

from keff.adapters.asym import AsymAdapter
from keff.adapters.heads import VALIDATIONS, AdapterTraining, apply_head
from keff.adapters.query import QueryAdapter
from keff.train.infonce import HEAD_KINDS

__all__ = ["HEAD_KINDS", "VALIDATIONS", "AdapterTraining", "AsymAdapter", "QueryAdapter", "apply_head"]
