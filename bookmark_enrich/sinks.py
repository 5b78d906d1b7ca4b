"""Where output records go: JSON Lines (default), a JSON array or CSV; stdout or a file."""

from __future__ import annotations

import csv
import os
import stat
import sys
from pathlib import Path
from typing import IO, Any, Literal

from .errors import UsageError
from .fileio import replace_file, temp_beside
from .records import (
    COLUMN_PREFIX,
    ENRICHMENT_FIELDS,
    RECORD_FIELDS,
    csv_cell,
    dumps,
    enrichment_cells,
)

__all__ = ["OutputFormat", "RecordSink", "open_sink"]

OutputFormat = Literal["jsonl", "json", "csv"]

class RecordSink:
    """Writes output records; ``-o FILE`` goes to a temp file renamed on close."""

    def __init__(self, fmt: OutputFormat, stream: IO[str], final_path: Path | None = None,
                 temp_path: Path | None = None, *, owned: bool = False) -> None:
        self.owned = owned
        """The stream is ours to close (a device or FIFO named with ``-o``)."""
        self.fmt = fmt
        self.stream = stream
        self.final_path = final_path
        self.temp_path = temp_path
        self.count = 0
        self._csv: Any = None
        self._csv_fields: list[str] = []
        self._interactive = stream.isatty() if hasattr(stream, "isatty") else False

    def __call__(self, record: dict[str, Any]) -> None:
        if self.fmt == "jsonl":
            self.stream.write(dumps(record) + "\n")
        elif self.fmt == "json":
            self.stream.write(("[\n" if self.count == 0 else ",\n") + dumps(record))
        else:
            self._write_csv(record)
        self.count += 1
        if self.final_path is None:
            # Pipes (`| jq`) see each record as soon as it is done.
            self.stream.flush()

    def _write_csv(self, record: dict[str, Any]) -> None:
        original = record.get("record", {})
        if self._csv is None:
            self._csv_fields = list(original)
            header = [*self._csv_fields, "_extra",
                      *(COLUMN_PREFIX + f for f in (*RECORD_FIELDS, *ENRICHMENT_FIELDS))]
            self._csv = csv.writer(self.stream)
            self._csv.writerow(header)
        row = [csv_cell(original.get(f)) for f in self._csv_fields]
        extra = {k: v for k, v in original.items() if k not in self._csv_fields}
        row.append(csv_cell(extra) if extra else "")
        row += enrichment_cells(record).values()
        self._csv.writerow(row)

    def close(self, *, commit: bool = True) -> None:
        if self.fmt == "json":
            self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        self.stream.flush()
        if self.final_path is None or self.temp_path is None:
            if self.owned:
                self.stream.close()
            return
        os.fsync(self.stream.fileno())
        self.stream.close()
        if commit:
            replace_file(self.temp_path, self.final_path)
        else:
            self.temp_path.unlink(missing_ok=True)


def open_sink(path: str | None, fmt: OutputFormat = "jsonl", *,
              private: bool = False) -> RecordSink:
    """A sink on stdout (``None`` or ``-``) or an atomically replaced file.

    ``private``: the file is readable by its owner only (a whole cache's export).
    """
    if path in (None, "-"):
        return RecordSink(fmt, sys.stdout)
    assert path is not None
    final = Path(path)
    try:
        st: os.stat_result | None = os.stat(final)  # through a symlink: its target
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UsageError(f"{path}: cannot write there: {exc.strerror or exc}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{path} is a folder; name a file to write the records to")
    if (st is not None and not stat.S_ISREG(st.st_mode)) or str(final).startswith("/dev/"):
        # A device or FIFO (`-o /dev/null`, `-o /dev/stdout`): written straight into,
        # never replaced by a regular file.
        try:
            stream = open(final, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"{path}: cannot write there: {exc.strerror or exc}") from None
        return RecordSink(fmt, stream, owned=True)
    if st is not None:
        final = final.resolve()  # a symlink stays one; its target gets the output
    fd, tmp = temp_beside(final)
    if st is not None and not private:
        os.fchmod(fd, stat.S_IMODE(st.st_mode))  # the file keeps its permissions
    elif not private:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # like any Unix tool's output
    stream = os.fdopen(fd, "w", encoding="utf-8", newline="")
    return RecordSink(fmt, stream, final, tmp)
