"""URLs in messages: a URL given on the command line may carry secrets (`http://user:token@host`,
`?api_key=...`), and none of them is ever printed."""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"(://[^:/@?#\s]*):[^@/?#\s]*@")
_QUERY_VALUE = re.compile(r"([?&;][^=&;#\s]*=)[^&;#\s]*")
_FRAGMENT = re.compile(r"#\S*")


def redact_url(url: str) -> str:
    """`url` for a message: the password in its user part, every query-string value and the fragment replaced by
    `***` (a query string rarely holds anything but keys and tokens; which parameter is secret is guesswork)."""
    text = _PASSWORD.sub(r"\1:***@", str(url))
    text = _QUERY_VALUE.sub(r"\1***", text)
    return _FRAGMENT.sub("#***", text)
