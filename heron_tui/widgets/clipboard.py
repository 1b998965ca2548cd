"""Copy to the user's clipboard with OSC 52, which travels over SSH to the terminal on their desk.

The escape goes to Textual's terminal driver (the same stream as the UI, so it is ordered with it).
Inside tmux the sequence is sent twice: plain, which tmux takes when ``set-clipboard`` is on, and
wrapped in tmux's DCS passthrough, which reaches the outer terminal when ``allow-passthrough`` is on;
GNU screen needs its own DCS wrapper. Terminals cap OSC 52 payloads (often ~100 kB), so long texts are
cut to ``MAX_BYTES``.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

MAX_BYTES = 74_994  # base64 of this is < 100,000 bytes


def osc52_sequences(text: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The escape sequence(s) that set the clipboard to ``text`` here; the first is always the plain one."""
    env = os.environ if env is None else env
    data = text.encode("utf-8")[:MAX_BYTES]
    b64 = base64.b64encode(data).decode("ascii")
    seq = f"\x1b]52;c;{b64}\x07"
    if env.get("TMUX"):
        return [seq, "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"]
    if env.get("STY"):
        return [seq, "\x1bP" + seq + "\x1b\\"]
    return [seq]


def copy(app, text: str) -> bool:
    """Write the sequences to the app's driver; returns False when there is no terminal (tests, web).

    Textual's ``App.copy_to_clipboard`` is also called so its in-app clipboard (paste in inputs) works.
    """
    app.copy_to_clipboard(text)  # sets app.clipboard, and writes a plain OSC 52 itself
    driver = getattr(app, "_driver", None)
    if driver is None:
        return False
    for seq in osc52_sequences(text)[1:]:  # the plain sequence was written by copy_to_clipboard
        driver.write(seq)
    return True
