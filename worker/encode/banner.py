"""The one wording of the AI banner: burned into overlays, drawn by the GSPS, repeated in series descriptions."""

from __future__ import annotations

from models.protocol import Provenance

AI_SERIES_PREFIX = "AI RESULT \u2013 NOT FOR DIAGNOSTIC USE"


def banner_for(provenance: Provenance) -> str:
    """The banner for results of this model: the warning, then the model's name and version, and the first 12 hex
    digits of its weights' sha256 (IHE AIR: a reader can tell which weights made the result)."""
    weights = f" ({provenance.weights_sha256[:12]})" if provenance.weights_sha256 else ""
    return f"{AI_SERIES_PREFIX} \u2013 {provenance.name} {provenance.version}{weights}"
