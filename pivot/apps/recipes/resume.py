"""What the recipes read back when they resume: their arguments, checked against the ones a run was
started with, and their result files, read as regular files of valid JSON."""
from __future__ import annotations

import json
import pathlib

from pivot.io import open_regular_file

# A recipe's JSON results are small (selection, scores, CKA of 12 encoders: kilobytes).
MAX_JSON_BYTES = 64 << 20


class ResumeError(ValueError):
    """A resume file is unreadable, malformed, or from a run with other arguments."""


def read_json(file: pathlib.Path, what: str, kind: type = dict):
    """The JSON value of ``file`` (a ``kind``), refusing anything but a regular file (a FIFO would
    block), a file larger than MAX_JSON_BYTES and malformed JSON, each with a ResumeError naming the file."""
    try:
        with open_regular_file(file, error=ResumeError) as f:
            data = f.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise ResumeError(f"{file}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_JSON_BYTES:
        raise ResumeError(f"{file}: the {what} is larger than {MAX_JSON_BYTES >> 20} MiB: not a resume file")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ResumeError(f"{file}: the {what} is not valid JSON ({exc}); delete it to redo that stage") from None
    if not isinstance(value, kind):
        raise ResumeError(f"{file}: the {what} must be a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def check_arguments(out: pathlib.Path, recipe: dict, ignore=(), file: str = "args.json") -> None:
    """Writes ``recipe`` (the run's arguments) to ``out/file`` on a fresh run; on a resumed run
    refuses (ResumeError) when one not in ``ignore`` differs from the stored value, naming each, so
    that results of other arguments are never reused silently."""
    path = out / file
    if path.exists() or path.is_symlink():
        stored = read_json(path, "recipe arguments")
        recipe = json.loads(json.dumps(recipe))  # as stored: tuples become lists
        differ = sorted(k for k in set(stored) | set(recipe)
                        if k not in ignore and stored.get(k, None) != recipe.get(k, None))
        if differ:
            parts = ", ".join(f"{k}: {stored.get(k)!r} stored, {recipe.get(k)!r} now" for k in differ)
            raise ResumeError(f"{out} holds a run with other arguments ({parts}): pass the same ones to resume it, "
                              f"or use another --out")
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(recipe, indent=1))
    tmp.replace(path)
