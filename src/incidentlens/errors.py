"""Errors that reach the user as one line on stderr and exit code 2."""


class IncidentLensError(Exception):
    """A problem the user can fix: the message names the file, column or row."""


class InputError(IncidentLensError):
    """Bad input data: a missing file, an unreadable format, a missing or unparseable column."""


class SourceError(IncidentLensError):
    """A remote source (Prometheus, ClickHouse, an LLM endpoint) is unreachable, refused or failed."""
