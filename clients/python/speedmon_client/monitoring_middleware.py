"""monitor_requests_session(session): the agent's emulator requests, measured by speedmon
(see proxying.py)."""

from .proxying import monitor_requests_session, monitored_opener

__all__ = ["monitor_requests_session", "monitored_opener"]
