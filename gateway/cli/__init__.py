"""The `mjgate` command: the entry point (`main`), the operator commands (`commands`) and
their HTTP client of the admin API (`admin_api`), the start-up checks and banner."""

from __future__ import annotations

from gateway.cli.main import main

__all__ = ["main"]
