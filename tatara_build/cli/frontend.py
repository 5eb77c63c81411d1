"""CLI commands of the frontend stage."""

from .app import app, reports_errors  # noqa: F401
