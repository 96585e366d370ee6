"""Argument and output-path checks shared by `hf-iis` and `scripts/*.py`, and their one-line `error:` report.

Every command checks its arguments and the paths it will write *before* any work, so a wrong argument costs no
model time and leaves no partial output; a refusal is one line `<prog>: error: <what> (<accepted form>)` on stderr
and exit status 2, never a traceback. Imports nothing of hf_iis, so any layer's script may use it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["USAGE_ERRORS", "ArgumentParser", "UsageError", "check_output_dir", "check_output_file",
           "positive_int", "non_negative_int", "report", "run_checked"]


class UsageError(ValueError):
    """A wrong command-line argument (raised by `ArgumentParser.error` instead of exiting)."""


# What "the user gave something wrong" looks like from the library: a ValueError / KeyError naming the problem, a
# path that is missing or of the wrong kind. Anything else is a bug and keeps its traceback.
USAGE_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, NotADirectoryError,
                                                 IsADirectoryError, FileExistsError, PermissionError)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors raise `UsageError`, so `main(argv)` reports them as its other errors: one line, exit
    status 2 (argparse's own way prints the usage block and calls `sys.exit`, which in-process callers must trap)."""

    def error(self, message: str):  # noqa: D102 (argparse's hook)
        raise UsageError(f"{message} (see {self.prog} --help)")


def report(prog: str, error: BaseException | str) -> int:
    """Print `<prog>: error: <message>` as one line on stderr; returns 2 (the exit status)."""
    message = error
    if isinstance(error, KeyError) and error.args:  # str(KeyError) adds quotes around the message
        message = error.args[0]
    if isinstance(error, OSError) and error.filename and error.strerror:
        message = f"{error.strerror}: {error.filename}"
    text = " ".join(str(message).split()) or type(error).__name__
    print(f"{prog}: error: {text}", file=sys.stderr)
    return 2


def run_checked(prog: str, step: Callable[[], Any]) -> tuple[Any, int | None]:
    """Run `step()`; a `USAGE_ERRORS` exception is reported (one line) -> (None, 2), else (result, None)."""
    try:
        return step(), None
    except USAGE_ERRORS as error:
        return None, report(prog, error)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0, "an integer >= 0")


def _int_at_least(text: str, low: int, form: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {form}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {form}, got {value}")
    return value


def check_output_dir(path: str | Path, what: str = "output folder") -> Path:
    """`path` may be created as a folder (or already is one): not a file, and no file among its parents."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path} is a file, not a folder: give a folder path")
    _check_parents(path, what)
    return path


def check_output_file(path: str | Path, what: str = "output file", suffixes: Iterable[str] | None = None) -> Path:
    """`path` may be written as a file: not a folder, no file among its parents, and (when `suffixes` is given)
    one of those extensions."""
    path = Path(path)
    if path.is_dir() or str(path).endswith(("/", "\\")):
        raise ValueError(f"{what} {path} is a folder: give a file path" +
                         (f" ending in {' or '.join(suffixes)}" if suffixes else ""))
    if suffixes is not None:
        suffixes = [s.lower() for s in suffixes]
        if path.suffix.lower() not in suffixes:
            got = f"{path.suffix!r}" if path.suffix else "no extension"
            raise ValueError(f"{what} {path} must end in {' or '.join(suffixes)} (got {got})")
    _check_parents(path, what)
    return path


def _check_parents(path: Path, what: str) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{what} {path}: {parent} is a file, so no folder can be made there")
            return
