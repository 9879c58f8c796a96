"""honcho, with each process's output also kept in a log file of its own.

    python -m common.harness.process_logs start -f Procfile     (honcho's arguments)

The console shows what honcho shows (prefixed, coloured lines); every line of process
`shop` is also appended as written to `<LOGS_DIR>/shop.log` (default `.data/logs/`),
which `manage.py traces show <trace-id>` reads. A file is rotated at
`LOG_FILE_MAX_BYTES` (default 20 MB) into `shop.log.1` and `shop.log.2`, so the
directory stays under about 60 MB a process. Honcho's own messages go to
`system.log`.

Honcho has no option for it: its Printer, the one place every line passes, is
replaced by one that also writes the files, before honcho's command runs.
"""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from common.harness.log_rotation import rotation_from_env
from common.harness.procfile import ROOT


def logs_dir() -> Path:
    """Where the processes' logs are: LOGS_DIR, else .data/logs/ of the checkout."""
    return Path(os.environ.get("LOGS_DIR") or ROOT / ".data" / "logs")


def log_max_bytes() -> int:
    return rotation_from_env(os.environ).max_bytes


def process_name(honcho_name: str) -> str:
    """`shop` for honcho's `shop` or `shop.1` (one file per Procfile line)."""
    base, _, number = honcho_name.rpartition(".")
    return base if base and number.isdigit() else honcho_name


class ProcessLogFiles:
    """One rotating file per process, its lines written as they come."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._files: dict[str, logging.Logger] = {}

    def _logger(self, name: str) -> logging.Logger:
        logger = self._files.get(name)
        if logger is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            handler = RotatingFileHandler(
                self.directory / f"{name}.log",
                maxBytes=self.max_bytes,
                backupCount=rotation_from_env(os.environ).backups,
                encoding="utf-8",
            )
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger = logging.getLogger(f"devstack.process-log.{name}")
            logger.propagate = False
            logger.setLevel(logging.INFO)
            logger.handlers = [handler]
            self._files[name] = logger
        return logger

    def write(self, name: str, data: str | bytes) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        logger = self._logger(process_name(name or "system"))
        for line in text.splitlines():
            logger.info(line)


def printer_class(files: ProcessLogFiles) -> type[Any]:
    """honcho's Printer, also writing every line to the process's file."""
    from honcho.printer import Printer

    class TeePrinter(Printer):
        def write(self, message: Any) -> None:
            super().write(message)
            if message.type == "line":
                files.write(message.name or "system", message.data)

    return TeePrinter


def main(argv: list[str] | None = None) -> None:
    import honcho.command

    files = ProcessLogFiles(logs_dir(), max_bytes=log_max_bytes())
    honcho.command.Printer = printer_class(files)
    honcho.command.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
