"""The Haystack agent team: tools over the evidence engine, a coordinator and two specialists, on any brain.

```python
from incidentlens.agents import investigate
result = investigate(store, llm="offline", trace_path=Path("out/trace.jsonl"))
```
"""

from incidentlens.agents.investigation import InvestigationResult, investigate

__all__ = ["InvestigationResult", "investigate"]
