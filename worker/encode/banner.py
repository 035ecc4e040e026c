"""The one wording of the AI banner: burned into overlays, drawn by the GSPS, repeated in series descriptions."""

from __future__ import annotations

from models.protocol import Provenance

AI_SERIES_PREFIX = "AI RESULT \u2013 NOT FOR DIAGNOSTIC USE"


def banner_for(provenance: Provenance) -> str:
    """The banner for results of this model: the warning, then the model's name and version."""
    return f"{AI_SERIES_PREFIX} \u2013 {provenance.name} {provenance.version}"
