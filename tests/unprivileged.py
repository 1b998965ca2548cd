"""A command prefix that runs a child as user ``nobody`` without capture privileges (setpriv).

The child keeps one capability, CAP_DAC_READ_SEARCH, so it can still read the checkout wherever it lives
(CI clones into a private ``mktemp -d`` directory that ``nobody`` could not enter) — reading files grants
nothing towards packet capture (CAP_NET_RAW) or eBPF (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN).
"""

from __future__ import annotations

import os
import shutil

SETPRIV = [
    "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
    "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search", "--bounding-set=-all,+dac_read_search",
]


def can_drop_privileges() -> bool:
    """setpriv is installed and we are root (only root can change to another user)."""
    return shutil.which("setpriv") is not None and hasattr(os, "geteuid") and os.geteuid() == 0
