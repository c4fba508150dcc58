"""The ``hitl`` card type, ``@card(type="hitl")``; rendering is :mod:`metaflow_hitl.plugin.card`.

Registered through ``plugins/cards/mfextinit_hitl.py`` (Metaflow reads card types from the
``CARDS`` list of a ``plugins.cards`` extension module). The class lives here, in the glue,
so that :mod:`metaflow_hitl.plugin.card` imports nothing from Metaflow at import time, and
the glue nothing from metaflow-hitl (imported when a card is rendered):
Metaflow loads card types while ``import metaflow`` runs, and a module that imported Metaflow
at its top would be half-initialised when Metaflow came back for it.
"""

from metaflow.plugins.cards.card_modules.card import MetaflowCard

from metaflow_extensions.hitl.plugins.hitl_loader import implementation


class HitlCard(MetaflowCard):
    """Metaflow card type ``hitl``: a gated step's request and decision.

    Parameters
    ----------
    options : dict, optional
        None are defined; unknown ones are listed on the card, not silently dropped.
    """

    type = "hitl"

    def __init__(self, options=None, components=None, graph=None, flow=None, **kwargs):
        self._options = dict(options or {})

    def render(self, task):
        """The card's HTML for ``task`` (a ``metaflow.Task``)."""
        card = implementation("plugin.card", "a hitl card is rendered")
        return card.render_task(task, self._options)


__all__ = ["HitlCard"]
