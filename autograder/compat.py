"""Standard-library modules the engine uses that older supported Pythons (3.10) lack.

``tomllib`` is 3.11+; on 3.10 its well-kept backport ``tomli`` (the same API; a requirement with
an environment marker) stands in.
"""
from __future__ import annotations

try:
    import tomllib  # novermin: 3.10 takes the except branch
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["tomllib"]
