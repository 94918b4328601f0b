"""`Extraction`: the size, time and memory budgets of document extraction, as a resource.

The budgets are settings (`extract_*`, see grace_pipelines/text/budget.py for why each
default); as a resource they come from the same GraceSettings the rest of the definitions
were built from (`Grace(home, extract_timeout_s=...)` included) and show in the UI.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from grace_pipelines.text.budget import ExtractBudget


class Extraction(dg.ConfigurableResource):
    """Limits for turning one document into text; an overrun fails that source only."""

    max_bytes: int = Field(description="Most bytes a document may expand to")
    max_ratio: float = Field(description="Highest compression ratio of a DOCX member")
    html_max_bytes: int = Field(description="Largest HTML page given to trafilatura")
    html_max_depth: int = Field(description="Deepest element nesting of an HTML page")
    timeout_s: float = Field(description="Wall-clock limit of one extraction")
    max_memory_mb: int = Field(description="Memory one extraction may add")

    @classmethod
    def from_budget(cls, budget: ExtractBudget) -> Extraction:
        fields = ("max_bytes", "max_ratio", "html_max_bytes", "html_max_depth", "timeout_s", "max_memory_mb")
        return cls(**{name: getattr(budget, name) for name in fields})

    def budget(self) -> ExtractBudget:
        return ExtractBudget(
            max_bytes=self.max_bytes,
            max_ratio=self.max_ratio,
            html_max_bytes=self.html_max_bytes,
            html_max_depth=self.html_max_depth,
            timeout_s=self.timeout_s,
            max_memory_mb=self.max_memory_mb,
        )
