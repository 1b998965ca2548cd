"""Which BPF programs are loaded in the kernel, read with the ``bpf()`` syscall (no bpftool needed).

Used to prove that heron leaves nothing behind: a uprobe holds a reference to its program, so while
any heron probe is attached a program named ``heron_*`` is loaded; when none is listed, no probe of
ours remains (``heron doctor`` reports it, the integration test asserts it after a SIGKILL).
Listing programs needs CAP_SYS_ADMIN; ``loaded_programs`` returns None when it is not allowed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import struct

PROGRAM_PREFIX = "heron_"
"""Every function of program.bpf.c is named ``heron_*``; the kernel keeps the first 15 characters."""

_NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_BPF_PROG_GET_NEXT_ID = 11
_BPF_PROG_GET_FD_BY_ID = 13
_BPF_OBJ_GET_INFO_BY_FD = 15
_INFO_SIZE = 256
_NAME_OFF = 64  # offsetof(struct bpf_prog_info, name)
_TYPE_NAMES = {2: "kprobe", 5: "tracepoint", 7: "perf_event", 17: "raw_tracepoint", 26: "tracing"}


def loaded_programs() -> list[tuple[int, str, str]] | None:
    """``[(id, type, name)]`` of every loaded BPF program, or None when the kernel will not say."""
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    out: list[tuple[int, str, str]] = []
    next_id = 0
    attr = ctypes.create_string_buffer(128)
    info = ctypes.create_string_buffer(_INFO_SIZE)
    while True:
        ctypes.memset(attr, 0, 128)
        struct.pack_into("<I", attr, 0, next_id)
        if syscall(nr, _BPF_PROG_GET_NEXT_ID, attr, 128) != 0:
            err = ctypes.get_errno()
            if err == 2:  # ENOENT: the end of the list
                return out
            return None  # EPERM and friends
        next_id = struct.unpack_from("<I", attr, 4)[0]
        ctypes.memset(attr, 0, 128)
        struct.pack_into("<I", attr, 0, next_id)
        fd = syscall(nr, _BPF_PROG_GET_FD_BY_ID, attr, 128)
        if fd < 0:
            continue  # unloaded meanwhile
        try:
            ctypes.memset(info, 0, _INFO_SIZE)
            ctypes.memset(attr, 0, 128)
            struct.pack_into("<IIQ", attr, 0, fd, _INFO_SIZE, ctypes.addressof(info))
            if syscall(nr, _BPF_OBJ_GET_INFO_BY_FD, attr, 128) != 0:
                continue
            ptype = struct.unpack_from("<I", info, 0)[0]
            name = info.raw[_NAME_OFF:_NAME_OFF + 16].split(b"\0", 1)[0].decode("ascii", "replace")
            out.append((next_id, _TYPE_NAMES.get(ptype, str(ptype)), name))
        finally:
            os.close(fd)


def heron_programs() -> list[tuple[int, str, str]] | None:
    """The loaded programs that are heron's (None when the list cannot be read)."""
    progs = loaded_programs()
    if progs is None:
        return None
    return [p for p in progs if p[2].startswith(PROGRAM_PREFIX)]


def programs_of(pid: int, proc: str = "/proc") -> set[int]:
    """Ids of the BPF programs process ``pid`` holds open (from ``/proc/<pid>/fdinfo``)."""
    ids: set[int] = set()
    try:
        fds = os.listdir(f"{proc}/{pid}/fd")
    except OSError:
        return ids
    for fd in fds:
        try:
            if os.readlink(f"{proc}/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"{proc}/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as fh:
                for line in fh:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split(":", 1)[1]))
        except (OSError, ValueError):
            continue
    return ids


def holders(prog_ids: set[int], proc: str = "/proc") -> dict[int, set[int]]:
    """``{pid: {prog ids}}`` of the processes holding any of ``prog_ids`` open."""
    out: dict[int, set[int]] = {}
    if not prog_ids:
        return out
    for name in os.listdir(proc):
        if name.isdigit():
            held = programs_of(int(name), proc) & prog_ids
            if held:
                out[int(name)] = held
    return out
