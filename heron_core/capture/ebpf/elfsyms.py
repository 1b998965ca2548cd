"""Which ``SSL_*`` functions an ELF file exports (stdlib-only; used by the agent's target discovery).

A uprobe can only be attached by name to a function the file defines and names in a symbol table.
Executables that bundle OpenSSL *and* export it (``/usr/bin/node``) are as visible as ``libssl.so``;
binaries with static, stripped TLS (Bun-built Claude Code with BoringSSL, Rust/rustls Codex) export
nothing and cannot be probed this way (docs/ebpf.md). Only the dynamic symbol table is read: it is
what survives ``strip`` and what ``nm -D`` shows, and it is small even in a 100 MB executable, so a
scan of every running process costs a few section headers per new inode.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

SSL_FUNCTIONS = ("SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex", "SSL_shutdown", "SSL_free")
"""What the agent hooks: the four data calls (entry + return) and the two close calls (entry)."""
DATA_FUNCTIONS = SSL_FUNCTIONS[:4]

_ELF_MAGIC = b"\x7fELF"
_SHT_DYNSYM = 11
_SHN_UNDEF = 0
_STT_FUNC = 2
_STT_GNU_IFUNC = 10
_STB_GLOBAL = 1
_STB_WEAK = 2
_MAX_TABLE = 256 * 1024 * 1024
"""Refuse absurd table sizes (a corrupt or hostile file must not make the agent allocate gigabytes)."""


def exported_ssl_functions(path: str) -> frozenset[str]:
    """The subset of ``SSL_FUNCTIONS`` that ``path`` defines and exports; empty when it is not ELF,
    cannot be read, or exports none (never raises for a bad file)."""
    try:
        with open(path, "rb") as fh:
            return _scan(fh)
    except (OSError, ValueError, struct.error):
        return frozenset()


def _scan(fh: BinaryIO) -> frozenset[str]:
    ident = fh.read(16)
    if len(ident) < 16 or not ident.startswith(_ELF_MAGIC):
        return frozenset()
    is64 = ident[4] == 2
    end = "<" if ident[5] == 1 else ">"
    if is64:
        hdr = struct.Struct(end + "HHIQQQIHHHHHH")
    else:
        hdr = struct.Struct(end + "HHIIIIIHHHHHH")
    raw = fh.read(hdr.size)
    if len(raw) < hdr.size:
        return frozenset()
    (_type, _machine, _version, _entry, _phoff, shoff, _flags, _ehsize, _phentsize, _phnum,
     shentsize, shnum, _shstrndx) = hdr.unpack(raw)
    if not shoff or not shnum:
        return frozenset()
    sh = struct.Struct(end + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII"))
    if shentsize < sh.size or shnum > 65535:
        return frozenset()
    fh.seek(shoff)
    table = fh.read(shentsize * shnum)
    sections = [sh.unpack_from(table, i * shentsize) for i in range(len(table) // shentsize)]
    for s in sections:
        if s[1] != _SHT_DYNSYM:
            continue
        _name, _t, _f, _addr, off, size, link, _info, _align, entsize = s
        if link >= len(sections) or size > _MAX_TABLE:
            return frozenset()
        str_off, str_size = sections[link][4], sections[link][5]
        if str_size > _MAX_TABLE:
            return frozenset()
        fh.seek(off)
        syms = fh.read(size)
        fh.seek(str_off)
        strtab = fh.read(str_size)
        return _matching(syms, strtab, is64, end, entsize)
    return frozenset()


def _matching(syms: bytes, strtab: bytes, is64: bool, end: str, entsize: int) -> frozenset[str]:
    wanted = {n.encode(): n for n in SSL_FUNCTIONS}
    if is64:
        sym = struct.Struct(end + "IBBHQQ")  # name, info, other, shndx, value, size
    else:
        sym = struct.Struct(end + "IIIBBH")  # name, value, size, info, other, shndx
    entsize = entsize or sym.size
    if entsize < sym.size:
        return frozenset()
    found: set[str] = set()
    for pos in range(0, len(syms) - sym.size + 1, entsize):
        fields = sym.unpack_from(syms, pos)
        if is64:
            name_off, info, _other, shndx = fields[0], fields[1], fields[2], fields[3]
        else:
            name_off, info, shndx = fields[0], fields[3], fields[5]
        if shndx == _SHN_UNDEF or (info & 0xF) not in (_STT_FUNC, _STT_GNU_IFUNC):
            continue
        if (info >> 4) not in (_STB_GLOBAL, _STB_WEAK):
            continue
        stop = strtab.find(b"\0", name_off)
        name = strtab[name_off:stop if stop >= 0 else len(strtab)]
        if name in wanted:
            found.add(wanted[name])
    return frozenset(found)
