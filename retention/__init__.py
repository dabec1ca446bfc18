"""How long recordings are kept: pure decisions (``policy``, ``holds``) and the job that applies them (``jobs``)."""
