"""The records an agent's runner reports (ExperimentResult, PatternDiscovery) and the
emulator pool manager's (PoolEvent).

Each record is checked here, when it is recorded, with the rules speedmon applies
(docs in the repository's README, "Post an experiment"), so a record that speedmon would
refuse raises ValueError in the caller instead of waiting in the spool.

Compile and checkpoint times of 0 or less mean "not measured": they are left out of the
JSON sent, so they do not pull speedmon's averages, histograms and SLA down.
"""

from __future__ import annotations

import enum
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Union

MAX_ID_CHARS = 128
MAX_STRATEGY_CHARS = 64
MAX_ERROR_MESSAGE_CHARS = 4096
MAX_WORKER_CHARS = 128
_MAX_INTEGER = 2 ** 53


class ExperimentStatus(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    TIMEOUT = "timeout"
    ERROR = "error"
    CANCELLED = "cancelled"


class PatternType(enum.Enum):
    MOVEMENT = "movement"
    BATTLE = "battle"
    MENU_NAVIGATION = "menu_navigation"
    ITEM_USAGE = "item_usage"
    DIALOGUE = "dialogue"
    OPTIMIZATION = "optimization"


@dataclass
class ExperimentResult:
    """One experiment. script_compilation_time_ms and checkpoint_loading_time_ms of 0 or
    less (the defaults) are "not measured"."""

    experiment_id: str
    status: Union[ExperimentStatus, str]
    duration_seconds: float
    script_compilation_time_ms: float = 0.0
    checkpoint_loading_time_ms: float = 0.0
    ai_strategy: str = "unknown"
    pattern_discoveries: int = 0
    timestamp: float = field(default_factory=time.time)
    error_message: Optional[str] = None
    performance_score: Optional[float] = None
    script_length: Optional[int] = None


@dataclass
class PatternDiscovery:
    """One discovered pattern; quality_score is 0..1."""

    pattern_id: str
    pattern_type: Union[PatternType, str]
    quality_score: float
    discovery_time_seconds: Optional[float] = None
    experiment_id: Optional[str] = None
    ai_worker: Optional[str] = None
    reuse_count: int = 0
    timestamp: float = field(default_factory=time.time)


class PoolEventKind(enum.Enum):
    FAILURE = "failure"
    RESTART = "restart"
    REPLACEMENT = "replacement"


class FailureType(enum.Enum):
    CRASH = "crash"
    EXIT = "exit"
    OOM = "oom"
    HANG = "hang"
    TIMEOUT = "timeout"
    CONNECT = "connect"
    STATUS = "status"
    OTHER = "other"


@dataclass
class PoolEvent:
    """What the emulator pool manager saw: a failure (with its failure_type), a restart
    or a replacement (replaced_by; startup_seconds for both). event_id makes a retry safe;
    SpeedmonClient.record_pool_event gives each event a random one when it has none."""

    event: Union[PoolEventKind, str]
    process: Optional[str] = None
    failure_type: Optional[Union[FailureType, str]] = None
    startup_seconds: Optional[float] = None
    replaced_by: Optional[str] = None
    message: Optional[str] = None
    event_id: Optional[str] = None
    timestamp: float = field(default_factory=time.time)


def _text(value: Any, name: str, low: int, high: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} is not valid Unicode text") from None
    if not low <= len(value) <= high:
        raise ValueError(f"{name} must be {low} to {high} characters (has {len(value)})")
    return value


def _number(value: Any, name: str, low: Optional[float] = None,
            high: Optional[float] = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite (is {value!r})")
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low} (is {value!r})")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high} (is {value!r})")
    return v


def _integer(value: Any, name: str) -> int:
    v = _number(value, name, 0, _MAX_INTEGER)
    if v != int(v):
        raise ValueError(f"{name} must be a whole number (is {value!r})")
    return int(v)


def _enum_value(value: Any, kind: type, name: str) -> str:
    if isinstance(value, kind):
        return str(value.value)  # type: ignore[attr-defined]
    if isinstance(value, str):
        for member in kind:  # type: ignore[attr-defined]
            if member.value == value.lower():
                return str(member.value)
    choices = ", ".join(m.value for m in kind)  # type: ignore[attr-defined]
    raise ValueError(f"{name} must be one of {choices} (is {value!r})")


def experiment_json(e: ExperimentResult) -> Dict[str, Any]:
    """The JSON object speedmon takes for e; raises ValueError when e is not valid."""
    doc: Dict[str, Any] = {
        "experiment_id": _text(e.experiment_id, "experiment_id", 1, MAX_ID_CHARS),
        "status": _enum_value(e.status, ExperimentStatus, "status"),
        "duration_seconds": _number(e.duration_seconds, "duration_seconds", 0),
        "ai_strategy": _text(e.ai_strategy, "ai_strategy", 1, MAX_STRATEGY_CHARS),
        "timestamp": _number(e.timestamp, "timestamp", 0),
    }
    for key in ("script_compilation_time_ms", "checkpoint_loading_time_ms"):
        value = getattr(e, key)
        if value is not None and _number(value, key) > 0:
            doc[key] = float(value)
    if e.pattern_discoveries is not None:
        doc["pattern_discoveries"] = _integer(e.pattern_discoveries, "pattern_discoveries")
    if e.error_message is not None:
        doc["error_message"] = _text(e.error_message, "error_message", 0,
                                     MAX_ERROR_MESSAGE_CHARS)
    if e.performance_score is not None:
        doc["performance_score"] = _number(e.performance_score, "performance_score")
    if e.script_length is not None:
        doc["script_length"] = _integer(e.script_length, "script_length")
    return doc


def pattern_json(p: PatternDiscovery) -> Dict[str, Any]:
    """The JSON object speedmon takes for p; raises ValueError when p is not valid."""
    doc: Dict[str, Any] = {
        "pattern_id": _text(p.pattern_id, "pattern_id", 1, MAX_ID_CHARS),
        "pattern_type": _enum_value(p.pattern_type, PatternType, "pattern_type"),
        "quality_score": _number(p.quality_score, "quality_score", 0, 1),
        "reuse_count": _integer(p.reuse_count, "reuse_count"),
        "timestamp": _number(p.timestamp, "timestamp", 0),
    }
    if p.discovery_time_seconds is not None:
        doc["discovery_time_seconds"] = _number(p.discovery_time_seconds,
                                                "discovery_time_seconds", 0)
    if p.experiment_id is not None:
        doc["experiment_id"] = _text(p.experiment_id, "experiment_id", 1, MAX_ID_CHARS)
    if p.ai_worker is not None:
        doc["ai_worker"] = _text(p.ai_worker, "ai_worker", 1, MAX_WORKER_CHARS)
    return doc


def pool_event_json(e: PoolEvent) -> Dict[str, Any]:
    """The JSON object speedmon takes for e; raises ValueError when e is not valid."""
    kind = _enum_value(e.event, PoolEventKind, "event")
    doc: Dict[str, Any] = {"event": kind, "timestamp": _number(e.timestamp, "timestamp", 0)}
    if (e.failure_type is None) == (kind == "failure"):
        raise ValueError("failure_type is required for a failure and refused otherwise")
    if e.failure_type is not None:
        doc["failure_type"] = _enum_value(e.failure_type, FailureType, "failure_type")
    if e.startup_seconds is not None:
        if kind == "failure":
            raise ValueError("startup_seconds is for a restart or a replacement")
        doc["startup_seconds"] = _number(e.startup_seconds, "startup_seconds", 0, 86400)
    if e.replaced_by is not None:
        if kind != "replacement":
            raise ValueError("replaced_by is for a replacement")
        doc["replaced_by"] = _text(e.replaced_by, "replaced_by", 1, MAX_ID_CHARS)
    for key in ("process", "event_id"):
        value = getattr(e, key)
        if value is not None:
            doc[key] = _text(value, key, 1, MAX_ID_CHARS)
    if e.message is not None:
        doc["message"] = _text(e.message, "message", 0, MAX_ERROR_MESSAGE_CHARS)
    return doc


def check_pattern_id(pattern_id: Any) -> str:
    return _text(pattern_id, "pattern_id", 1, MAX_ID_CHARS)


def dumps(doc: Dict[str, Any]) -> str:
    """One line of JSON (NDJSON-safe: json.dumps never writes a raw newline)."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
