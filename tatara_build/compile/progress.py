"""Stage progress: a rich spinner on a terminal, plain lines on stderr in CI
or when piped, nothing with --json (stdout carries the manifest only)."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator


class Progress:
    """Plain lines: `build: compile ...` then `build: compile done (1.2 s)`."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        started = time.monotonic()
        self.line(f"{name}{' ' + detail if detail else ''} ...")
        yield
        self.line(f"{name} done ({time.monotonic() - started:.2f} s)")

    def note(self, message: str) -> None:
        self.line(message)

    def line(self, text: str) -> None:
        from ..errors import visible

        print(f"tatara-build: {visible(text, keep='')}", file=self.stream, flush=True)


class Quiet(Progress):
    def line(self, text: str) -> None:
        pass


class RichProgress(Progress):
    def __init__(self):
        from rich.console import Console

        super().__init__()
        self.console = Console(stderr=True)

    @contextmanager
    def stage(self, name: str, detail: str = "") -> Iterator[None]:
        started = time.monotonic()
        from rich.markup import escape

        from ..errors import visible

        with self.console.status(f"[bold]{name}[/] {escape(visible(detail, keep=''))}"):
            yield
        self.console.print(f"[green]✓[/] {name} [dim]{time.monotonic() - started:.2f} s[/]", highlight=False)

    def line(self, text: str) -> None:
        from ..errors import visible

        self.console.print(visible(text, keep=""), highlight=False, markup=False, soft_wrap=True)


def make_progress(json_mode: bool = False) -> Progress:
    if json_mode:
        return Quiet()
    if sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("1", "true"):
        return RichProgress()
    return Progress()
