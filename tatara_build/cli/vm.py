"""CLI commands of the vm stage."""

from .app import app, reports_errors  # noqa: F401
