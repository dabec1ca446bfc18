"""Logging for every server process: plain text, or one JSON object per line (``CUSTODIA_LOG_FORMAT=json``).

One ``dictConfig`` serves the API (passed to uvicorn as ``log_config``), the Celery worker and beat
(through Celery's ``setup_logging`` signal) and the CLI tools, so every line of a deployment has
the same shape and a log shipper can parse all of them.
"""

from __future__ import annotations

import json
import logging
import logging.config
import socket
from datetime import UTC, datetime
from typing import Any

#: Attributes every LogRecord has; anything else was passed through ``extra=`` and is kept.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message", "taskName"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", "process", "host", …extra, "exc"}`` on one line, UTF-8 kept."""

    def __init__(self, service: str = "custodia") -> None:
        super().__init__()
        self.service = service
        self.host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "service": self.service,
            "host": self.host,
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def logging_config(log_format: str = "text", level: str = "INFO", service: str = "custodia") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary; also valid as uvicorn's ``log_config``."""
    if log_format == "json":
        formatter: dict[str, Any] = {"()": JsonFormatter, "service": service}
    else:
        formatter = {"format": "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"custodia": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "custodia", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # uvicorn and celery bring their own handlers; route them through ours instead
            **{
                name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task", "celery.worker")
            },
            "botocore": {"level": "WARNING"},
            "boto3": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }


def configure_logging(log_format: str | None = None, level: str | None = None, service: str = "custodia") -> None:
    """Apply :func:`logging_config` to this process (format and level default to the settings)."""
    if log_format is None or level is None:
        from evidence_server.config import get_settings

        settings = get_settings()
        log_format = log_format or settings.log_format
        level = level or settings.log_level
    logging.config.dictConfig(logging_config(log_format, level, service=service))
    logging.captureWarnings(True)
