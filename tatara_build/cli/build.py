"""CLI commands of the build stage."""

from .app import app, reports_errors  # noqa: F401
