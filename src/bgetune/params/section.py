"""The base of every params section: unknown keys are errors, assignments are validated."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Ratio = Field(ge=0.0, le=1.0)
# A name (a column, a file, a model) where "" would mean nothing: rejected by the schema, not at the stage that uses it.
NonEmptyText = Annotated[str, StringConstraints(min_length=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
