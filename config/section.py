"""The base of every configuration table: an unknown key in it is an error, as at the top level."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A table of the configuration: an unknown key in it is an error, as at the top level."""

    model_config = ConfigDict(extra="forbid")
