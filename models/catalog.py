"""Weight files published by others that ``cxr model fetch`` may download, each from its known address and checked
against a sha256 pinned here. No process of the node downloads anything at run time: fetching is an admin's command.

A release whose digest has not been pinned in this version (``sha256 = None``) is fetched only with ``--sha256``, the
digest the admin obtained from a source they trust; the command never stores a file it could not check.
"""

from __future__ import annotations

from dataclasses import dataclass

XRV_RELEASES = "https://github.com/mlmed/torchxrayvision/releases/download/v1/"


@dataclass(frozen=True)
class PublishedWeights:
    name: str
    """What ``cxr model fetch`` takes: the detector's weights name (``xrv:<name>`` in ``detector``)."""
    file: str
    """The file name the detector looks for in ``model.weights_dir``."""
    url: str
    sha256: str | None
    """The pinned digest; None: not pinned in this version (see the module's note)."""

    @property
    def detector(self) -> str:
        return f"xrv:{self.name}"


CATALOG: dict[str, PublishedWeights] = {
    entry.name: entry
    for entry in (
        PublishedWeights(
            "densenet121-res224-all",
            "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
            XRV_RELEASES
            + "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt",
            None,
        ),
        PublishedWeights(
            "resnet50-res512-all",
            "pc-nih-rsna-siim-vin-resnet50-test512-e400-state.pt",
            XRV_RELEASES + "pc-nih-rsna-siim-vin-resnet50-test512-e400-state.pt",
            None,
        ),
    )
}


def published(name: str) -> PublishedWeights:
    """The catalog entry for ``name`` (``xrv:`` may be written); a ValueError names the known ones."""
    entry = CATALOG.get(name.removeprefix("xrv:"))
    if entry is None:
        raise ValueError(f"no published weights named {name!r}; known: {', '.join(sorted(CATALOG))}")
    return entry
