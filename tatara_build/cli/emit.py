"""CLI commands of the emit stage."""

from .app import app, reports_errors  # noqa: F401
