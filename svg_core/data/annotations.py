"""ActivityNet Speech annotation files: typed records and a validating reader.

Format (one JSON list, one item per moment-query pair; see ../shared/data/activitynet_speech):

    [video_id, duration_sec, [start_sec, end_sec], sentence, wav_name]     # 5 fields (speech)
    [video_id, duration_sec, [start_sec, end_sec], sentence]               # 4 fields (text)

Example: ``["v_uqiMw7tQ1Cc", 55.15, [0, 4.14], "Two men ...", "uqiMw7tQ1Cc_val_2_1.wav"]``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

from svg_core.errors import MissingInputError, UserInputError

Seconds = float


@dataclass(frozen=True)
class QueryRecord:
    """One moment and its (spoken) query.

    Attributes:
        video_id: e.g. "v_uqiMw7tQ1Cc".
        duration_sec: video duration.
        start_sec, end_sec: the moment, 0 <= start_sec < end_sec <= duration_sec.
        sentence: the caption (leading spaces of ActivityNet Captions removed).
        wav_name: file name of the spoken query, None for 4-field (text-only) files.
        index: position of the item in its file.
    """

    video_id: str
    duration_sec: Seconds
    start_sec: Seconds
    end_sec: Seconds
    sentence: str
    wav_name: str | None
    index: int

    @property
    def query_id(self) -> str:
        """Stable id: the wav name, or "<video_id>#<index>" for text-only files."""
        return self.wav_name or f"{self.video_id}#{self.index}"

    def to_item(self) -> list:
        """The on-disk list form (5 fields, or 4 when there is no wav)."""
        item = [self.video_id, self.duration_sec, [self.start_sec, self.end_sec], self.sentence]
        return item + [self.wav_name] if self.wav_name is not None else item


@dataclass
class LoadReport:
    """What :func:`load_annotations` repaired or skipped.

    Attributes:
        path: the file read.
        n_items: items in the file.
        n_loaded: records returned.
        n_end_clipped: ends past the duration, clipped to it.
        skipped: (item index, reason) of each skipped item (``on_error="skip"`` only).
    """

    path: str
    n_items: int = 0
    n_loaded: int = 0
    n_end_clipped: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _number(value, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserInputError(f"{where}: {what} must be a number, found {value!r}")
    if not math.isfinite(value):
        raise UserInputError(f"{where}: {what} must be finite, found {value!r}")
    return float(value)


def parse_item(item, index: int, path: str = "<memory>") -> tuple[QueryRecord, bool]:
    """Validate one list item. Returns (record, end_was_clipped); raises ValueError naming the item."""
    where = f"{path} item {index}"
    if not isinstance(item, list) or len(item) not in (4, 5):
        raise UserInputError(
            f"{where}: expected a list [video_id, duration_sec, [start_sec, end_sec], sentence(, wav_name)], "
            f"found {str(item)[:120]}"
        )
    video_id, duration, span, sentence = item[:4]
    wav_name = item[4] if len(item) == 5 else None
    if not isinstance(video_id, str) or not video_id:
        raise UserInputError(f"{where}: video_id must be a non-empty string, found {video_id!r}")
    duration_sec = _number(duration, "duration", where)
    if duration_sec <= 0:
        raise UserInputError(f"{where}: duration must be positive, found {duration_sec}")
    if not isinstance(span, (list, tuple)) or len(span) != 2:
        raise UserInputError(f"{where}: timestamps must be [start_sec, end_sec], found {span!r}")
    start_sec = _number(span[0], "start", where)
    end_sec = _number(span[1], "end", where)
    if start_sec < 0 or end_sec < 0:
        raise UserInputError(f"{where}: negative time in [{start_sec}, {end_sec}]")
    if not isinstance(sentence, str) or not sentence.strip():
        raise UserInputError(f"{where}: sentence must be a non-empty string, found {sentence!r}")
    if wav_name is not None and (not isinstance(wav_name, str) or not wav_name):
        raise UserInputError(f"{where}: wav name must be a non-empty string, found {wav_name!r}")
    if wav_name is not None and (PurePosixPath(wav_name).is_absolute() or PureWindowsPath(wav_name).is_absolute()
                                 or ".." in PurePosixPath(wav_name.replace("\\", "/")).parts):
        raise UserInputError(f"{where}: wav name {wav_name!r} must be a file name inside the dataset's "
                             "audio folder (no '..', no absolute path)")
    clipped = end_sec > duration_sec
    end_sec = min(end_sec, duration_sec)
    if start_sec >= end_sec:
        raise UserInputError(f"{where}: start {start_sec} s must be before end {end_sec} s (duration {duration_sec} s)")
    record = QueryRecord(video_id, duration_sec, start_sec, end_sec, sentence.strip(), wav_name, index)
    return record, clipped


def load_annotations(
    path: str | Path, on_error: Literal["raise", "skip"] = "raise"
) -> tuple[list[QueryRecord], LoadReport]:
    """Read an ActivityNet Speech (5-field) or ActivityNet Captions list (4-field) JSON file.

    Ends past the video duration are clipped and counted. Invalid items (start >= end, negative
    times, non-numbers, missing fields) raise a ValueError naming the file and item index, or
    with ``on_error="skip"`` are skipped and listed in the report.

    Args:
        path: the JSON file.
        on_error: "raise" (default) or "skip".

    Returns:
        (records in file order, :class:`LoadReport`).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', found {on_error!r}")
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"annotation file not found: {path}")
    if path.is_dir():
        raise UserInputError(f"{path} is a folder; give the annotation JSON file inside it")
    try:
        with path.open("rb") as handle:
            items = json.load(handle)
    except json.JSONDecodeError as err:
        raise UserInputError(f"{path}: not valid JSON ({err})") from err
    except UnicodeDecodeError as err:
        raise UserInputError(f"{path}: not valid UTF-8 text ({err}); re-save the file as UTF-8") from err
    except RecursionError as err:
        raise UserInputError(f"{path}: JSON nested too deeply; expected a flat list of items") from err
    if not isinstance(items, list):
        raise UserInputError(f"{path}: expected a JSON list of items, found {type(items).__name__}")
    report = LoadReport(path=str(path), n_items=len(items))
    records: list[QueryRecord] = []
    for index, item in enumerate(items):
        try:
            record, clipped = parse_item(item, index, str(path))
        except ValueError as err:
            if on_error == "raise":
                raise
            report.skipped.append((index, str(err)))
            continue
        report.n_end_clipped += int(clipped)
        records.append(record)
    report.n_loaded = len(records)
    return records, report


def save_annotations(records: list[QueryRecord], path: str | Path) -> None:
    """Write records in the on-disk list format (5 fields when they have wav names)."""
    Path(path).write_text(json.dumps([r.to_item() for r in records], indent=1))
