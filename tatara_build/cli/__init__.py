"""`tatara-build` command line: one module per pipeline stage registers its
commands on the shared app."""

from .app import app
from . import frontend, emit, build, vm  # noqa: F401  (register commands)


def main() -> None:
    app()
