"""The output folder of a batch run: predictions.csv and predictions.jsonl, each file's rows written once.

The CSV has the rows `predict --csv` writes (core.batch.BATCH_CSV_COLUMNS); the JSONL has one line
per file holding what `predict --json` prints for it. Only the driver writes, one file at a time:
its CSV rows first, then its JSONL line. The JSONL is the record of what is done: opening the
folder again drops a torn last line and any CSV rows of a file without a JSONL line (the run died
between the two), so a re-run skips exactly the files done and writes no row twice.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from core.batch import BATCH_CSV_COLUMNS

CSV_NAME = "predictions.csv"
JSONL_NAME = "predictions.jsonl"
SETTINGS_NAME = "settings.json"


class ResultsFolder:
    """Append-only CSV and JSONL in `folder`; `done` holds the images that already have results.

    `settings` (models, detector settings) are kept in settings.json: a folder holding results of
    other settings is refused (ValueError), so a resumed run never mixes two kinds of rows.
    """

    def __init__(self, folder: str | Path, settings: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if settings is not None:
            keep_settings(self.folder, settings)
        self.csv_path = self.folder / CSV_NAME
        self.jsonl_path = self.folder / JSONL_NAME
        self.done: set[str] = set()
        self._repair()
        self._csv = open(self.csv_path, "a", newline="", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._jsonl = open(self.jsonl_path, "a", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._csv)
        if self._csv.tell() == 0:
            self._writer.writerow(BATCH_CSV_COLUMNS)
            self._csv.flush()

    def write(self, image: str, entry: dict[str, Any], rows: list[list[Any]]) -> bool:
        """Write one file's CSV rows and JSONL line; False (nothing written) if it already has them."""
        if image in self.done:
            return False
        self._writer.writerows(rows)
        self._csv.flush()
        self._jsonl.write(json.dumps(entry) + "\n")
        self._jsonl.flush()
        self.done.add(image)
        return True

    def close(self) -> None:
        for handle in (self._csv, self._jsonl):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()

    def __enter__(self) -> ResultsFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _repair(self) -> None:
        """Keep the whole JSONL lines and the CSV rows of the files they name; drop the rest."""
        lines: list[str] = []
        if self.jsonl_path.exists():
            for line in read_as_written(self.jsonl_path).splitlines(keepends=True):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a torn last line: its file is done again
                if not line.endswith("\n") or entry["image"] in self.done:
                    continue
                self.done.add(entry["image"])
                lines.append(line)
            _rewrite_if_changed(self.jsonl_path, "".join(lines))
        if self.csv_path.exists():
            text = read_as_written(self.csv_path)
            kept = io.StringIO()
            writer = csv.writer(kept)
            writer.writerow(BATCH_CSV_COLUMNS)
            complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
            for row in list(csv.reader(io.StringIO(complete, newline="")))[1:]:
                if row and row[0] in self.done:
                    writer.writerow(row)
            _rewrite_if_changed(self.csv_path, kept.getvalue() if self.done else "")


def keep_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Write settings.json in `folder`, or check it: ValueError when it holds other settings."""
    settings = json.loads(json.dumps(settings))  # tuples become lists, as in the file
    path = folder / SETTINGS_NAME
    if path.exists():
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept != settings:
            changed = ", ".join(sorted(k for k in {*kept, *settings} if kept.get(k) != settings.get(k)))
            raise ValueError(
                f"{folder} holds results made with other settings ({changed}); give another --out"
            )
        return
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    os.replace(temporary, path)


def read_as_written(path: Path) -> str:
    """The file's text with its line endings as written (the CSV's are \\r\\n)."""
    with open(path, newline="", encoding="utf-8") as handle:
        return handle.read()


def _rewrite_if_changed(path: Path, text: str) -> None:
    """Replace the file atomically when its content differs from `text`."""
    if read_as_written(path) == text:
        return
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)
