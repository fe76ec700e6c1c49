"""The Haystack agent team: tools over the evidence engine, a coordinator and two specialists, on any brain.

```python
from incidentlens.agents import investigate
result = investigate(store, llm="offline", trace_path=Path("out/trace.jsonl"))
```
"""

import os

# An offline investigation makes no network calls; Haystack's usage telemetry stays off unless the user opts in.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

from incidentlens.agents.investigation import InvestigationResult, investigate

__all__ = ["InvestigationResult", "investigate"]
