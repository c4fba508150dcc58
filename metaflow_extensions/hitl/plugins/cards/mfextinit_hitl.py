"""Registers the ``hitl`` card type (``@card(type="hitl")``) with Metaflow.

Metaflow reads card types from the ``CARDS`` list of a ``plugins.cards`` extension module;
the card is :mod:`metaflow_extensions.hitl.plugins.hitl_card`.
"""

from metaflow_extensions.hitl.plugins.hitl_card import HitlCard

CARDS = [HitlCard]
