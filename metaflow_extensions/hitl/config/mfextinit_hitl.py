"""metaflow-hitl settings, readable as ``metaflow.metaflow_config.HITL_*``.

Each is set by the environment variable ``METAFLOW_HITL_<NAME>`` or the Metaflow profile.
"""

from metaflow.metaflow_config_funcs import from_conf

#: Where ``metaflow-hitl`` looks for gates when no --store is given.
HITL_STORE = from_conf("HITL_STORE")
#: Identity recorded for CLI decisions when --as is not given.
HITL_ACTOR = from_conf("HITL_ACTOR")
#: Review setting used when ``@hitl`` gives no ``review=`` (``git:...``, ``github:...``, ``none``).
HITL_REVIEW = from_conf("HITL_REVIEW")
#: Channels whose decisions count on every gate (``cli``, ``github``); a flow's
#: ``@hitl(trusted_channels=...)`` may narrow it, never widen it.
HITL_TRUSTED_CHANNELS = from_conf("HITL_TRUSTED_CHANNELS")
#: Metaflow user -> GitHub login, as a JSON object or the path of a JSON file: who started a run
#: on GitHub's terms (self-approval is refused under either name).
HITL_IDENTITY_MAP = from_conf("HITL_IDENTITY_MAP")
#: Argo: the image of the hitl-notify pods (default: the gated step's image).
HITL_NOTIFY_IMAGE = from_conf("HITL_NOTIFY_IMAGE")
#: Argo: the notify pods' nodeSelector (``k=v,k=v`` or JSON; default: none, not the step's).
HITL_NOTIFY_NODE_SELECTOR = from_conf("HITL_NOTIFY_NODE_SELECTOR")
#: Argo: the notify pods' tolerations (a JSON list; default: none, not the step's).
HITL_NOTIFY_TOLERATIONS = from_conf("HITL_NOTIFY_TOLERATIONS")
