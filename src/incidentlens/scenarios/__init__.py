"""Generated scenarios: telemetry with a known incident (or none) and its ground truth in truth.json."""

from incidentlens.scenarios.registry import generate, list_scenarios

__all__ = ["generate", "list_scenarios"]
