"""Every key of the TUI in one named table, overridable from a TOML file.

Each binding has a stable id (``filter``, ``export_all`` …). The table builds Textual ``Binding``s with
those ids, so a user file only remaps ids to keys and Textual's keymap does the rest, and the help
screen lists the keys actually in effect. The file is ``~/.config/heron/keys.toml`` (or
``$XDG_CONFIG_HOME/heron/keys.toml``, or ``--keys FILE``)::

    [keys]
    filter = "slash,ctrl+l"     # several keys: comma-separated
    quit = "q,ctrl+q"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding


@dataclass(frozen=True, slots=True)
class KeySpec:
    id: str
    keys: str  # Textual key names, comma-separated
    action: str
    description: str
    scope: str = "main"  # 'app': works on every screen; 'main': the lists screen
    show: bool = False  # in the footer
    short: str = ""  # footer label


DEFAULT_KEYS: tuple[KeySpec, ...] = (
    KeySpec("help", "question_mark", "help", "Help: keys and filter fields", "app", True, "help"),
    KeySpec("quit", "q", "quit", "Quit", "app", True, "quit"),
    KeySpec("palette", "ctrl+p", "command_palette", "Command palette", "app"),
    KeySpec("back", "escape", "back", "Back / close", "app"),
    KeySpec("filter", "slash", "focus_filter", "Edit the display filter", show=True, short="filter"),
    KeySpec("filter_toggle", "ctrl+f", "toggle_filter", "Filter on/off (keeps the text)"),
    KeySpec("search_next", "n", "search(1)", "Next row matching the filter text (without filtering)"),
    KeySpec("search_prev", "N", "search(-1)", "Previous matching row"),
    KeySpec("open", "enter", "open", "Open the selected row", show=True, short="open"),
    KeySpec("next_pane", "tab", "next_pane", "Next pane"),
    KeySpec("prev_pane", "shift+tab", "prev_pane", "Previous pane"),
    KeySpec("view_turns", "1", "view('turns')", "Turns view"),
    KeySpec("view_sessions", "2", "view('sessions')", "Sessions view"),
    KeySpec("view_calls", "3", "view('calls')", "Calls view"),
    KeySpec("view_insights", "4", "view('insights')", "Insights view"),
    KeySpec("view_services", "5", "view('services')", "Services view"),
    KeySpec("view_pipeline", "6", "view('pipeline')", "Pipeline health view"),
    KeySpec("sort", "s", "sort", "Sort by the next column", show=True, short="sort"),
    KeySpec("sort_reverse", "S", "sort_reverse", "Reverse the sort"),
    KeySpec("follow", "f", "toggle_follow", "Follow the newest row as rows arrive (live, loading)", show=True,
            short="follow"),
    KeySpec("mark", "m", "mark", "Mark / unmark the row"),
    KeySpec("export", "e", "export_selected", "Export SFT: marked rows, else the selected one", show=True,
            short="export"),
    KeySpec("export_all", "E", "export_all", "Export SFT of every row matching the filter"),
    KeySpec("copy", "y", "copy", "Copy the row's id and preview (OSC 52)"),
    KeySpec("metrics", "M", "toggle_metrics", "Metrics pane on/off", show=True, short="metrics"),
)

_BY_ID = {k.id: k for k in DEFAULT_KEYS}


def bindings(scope: str, namespace: str = "") -> list[Binding]:
    """Textual bindings of one scope, with their ids (what the keymap overrides); ``namespace``
    (``"app."``) routes the actions of screen-level bindings to the app."""
    return [
        Binding(k.keys, namespace + k.action, k.short or k.description, show=k.show, id=k.id,
                tooltip=k.description)
        for k in DEFAULT_KEYS if k.scope == scope
    ]


def default_keys_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "heron" / "keys.toml"


class KeysError(ValueError):
    """A keys file that cannot be used (one-line message)."""


def load_keymap(path: str | os.PathLike[str] | None = None, required: bool = False) -> dict[str, str]:
    """Read ``{binding id: keys}`` overrides; a missing default file is simply no overrides.

    Accepts a ``[keys]`` table or top-level entries; values are strings or lists of strings.
    Raises ``KeysError`` for unreadable files, unknown ids or non-string keys.
    """
    p = Path(path) if path is not None else default_keys_path()
    if not p.exists():
        if required:
            raise KeysError(f"{p}: no such file")
        return {}
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KeysError(f"{p}: {exc}") from None
    table = data.get("keys", data)
    if not isinstance(table, dict):
        raise KeysError(f"{p}: [keys] must be a table")
    out: dict[str, str] = {}
    for key_id, value in table.items():
        if key_id not in _BY_ID:
            raise KeysError(f"{p}: unknown key id {key_id!r} (known: {', '.join(_BY_ID)})")
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        if not isinstance(value, str) or not value.strip():
            raise KeysError(f"{p}: {key_id} must be a key name or a list of them")
        out[key_id] = value.replace(" ", "")
    return out


def effective_keys(keymap: dict[str, str]) -> list[tuple[KeySpec, str]]:
    """Each binding with the keys in effect (the user's override or the default), in table order."""
    return [(k, keymap.get(k.id, k.keys)) for k in DEFAULT_KEYS]


_DISPLAY = {"question_mark": "?", "slash": "/", "escape": "esc", "enter": "enter", "tab": "tab",
            "shift+tab": "shift+tab"}


def display_keys(keys: str) -> str:
    """``question_mark,ctrl+f`` → ``? / ctrl+f`` for help texts."""
    return " / ".join(_DISPLAY.get(k, k) for k in keys.split(","))
