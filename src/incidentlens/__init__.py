"""IncidentLens: find the incident in metrics and logs, investigate it, write the review."""

__version__ = "0.1.0"
