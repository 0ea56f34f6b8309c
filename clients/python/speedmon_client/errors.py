"""The exceptions the client raises. All derive from SpeedmonError."""

from __future__ import annotations

from typing import Optional


class SpeedmonError(Exception):
    """Something the client could not do."""


class SpoolFullError(SpeedmonError):
    """record_* found the spool at max_spool_records: speedmon has been unreachable (or
    refusing) for long enough that the bound was reached. Nothing was recorded."""


class SpoolLockedError(SpeedmonError):
    """Another client (in this or another process) already uses the spool directory."""


class ApiError(SpeedmonError):
    """speedmon answered a read or an admin call with an error status.

    status: the HTTP status; error and field: speedmon's {"error", "field"} body."""

    def __init__(self, method: str, path: str, status: int, error: str,
                 field: Optional[str] = None) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"{method} {path} -> {status}: {error}{where}")
        self.status = status
        self.error = error
        self.field = field
