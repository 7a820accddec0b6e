"""Shared base model for protocol frames."""

from pydantic import BaseModel, ConfigDict


class Frame(BaseModel):
    """A protocol object: undeclared fields are an error, field names are the wire names."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Open(BaseModel):
    """A nested object whose extra fields are passed through untouched (e.g. raw chunks)."""

    model_config = ConfigDict(extra="allow")
