"""Registers the ``hitl`` card type (``@card(type="hitl")``) with Metaflow.

Metaflow reads card types from the ``CARDS`` list of a ``plugins/cards`` extension module;
the implementation is :mod:`metaflow_hitl.plugin.card`.
"""

from metaflow_hitl.plugin.card import HitlCard

CARDS = [HitlCard]
