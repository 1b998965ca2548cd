"""The REST API of ``heron serve`` / ``heron run`` (interfaces.md §7): ``create_app`` builds it."""

from heron_tui.api.app import create_app

__all__ = ["create_app"]
