"""Units of the eBPF source that need no kernel support: frames, ELF exports, target discovery with a
fake /proc, prerequisite parsing and the header-tree merge."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from heron_core.capture.ebpf import elfsyms, headers, prereqs
from heron_core.capture.ebpf import frames as F
from heron_core.capture.ebpf.targets import Scanner, ldconfig_libssl, parse_maps_line, process_identity

# --- frames ---------------------------------------------------------------------------------------------


def _event(**kw) -> F.Event:
    base = {"kind": F.KIND_WRITE, "flags": 0, "chunk": 0, "pid": 4242, "tid": 4243, "conn": 0xDEADBEEF,
            "gen": 3, "ts_ns": 123_456_789, "offset": 10, "aux": 5, "comm": "curl", "data": b"hello"}
    base.update(kw)
    return F.Event(**base)


def test_event_frame_round_trip_across_arbitrary_splits():
    evs = [_event(), _event(kind=F.KIND_READ, data=b"x" * F.MAX_CHUNK, aux=F.MAX_CHUNK),
           _event(kind=F.KIND_CLOSE, data=b"", offset=218, aux=1939)]
    stream = b"".join(F.encode_event(e) for e in evs) + F.encode_json(F.STATS, {"events_lost": 7})
    for step in (1, 7, 4096, len(stream)):
        reader = F.FrameReader()
        got = []
        for i in range(0, len(stream), step):
            got += reader.feed(stream[i:i + step])
        assert reader.pending == 0
        assert [t for t, _ in got] == [F.EVENT, F.EVENT, F.EVENT, F.STATS]
        assert [F.decode_event(b) for _, b in got[:3]] == evs


def test_event_header_matches_the_c_struct_layout():
    # struct event_t header: u8 u8 u16 u32 u32 u32 u64 u64 u64 u64 u32 u32 char[16] = 72 bytes, comm at 56
    assert F.EVENT_HEADER.size == 72
    raw = F.encode_event(_event(comm="python3.11"))[5:]
    assert raw[56:66] == b"python3.11" and struct.unpack_from("<I", raw, 4)[0] == 4242


def test_corrupt_frames_are_refused():
    with pytest.raises(F.FrameError):
        F.FrameReader().feed(struct.pack("<IB", F.MAX_FRAME + 1, F.EVENT))
    with pytest.raises(F.FrameError):
        F.FrameReader().feed(struct.pack("<IB", 0, F.EVENT))
    body = F.encode_event(_event())[5:]
    assert F.decode_event(body[:40]) is None  # shorter than its header
    assert F.decode_event(body[:-1]) is None  # shorter than its len says
    assert F.decode_event(bytes([9]) + body[1:]) is None  # unknown kind


# --- ELF exports ----------------------------------------------------------------------------------------


def _compile_shared(tmp_path: Path, source: str, name: str) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("a C compiler is needed to build test ELF files")
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / name
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(out), str(src)], check=True, capture_output=True)
    return out


def test_exported_functions_of_built_libraries(tmp_path):
    lib = _compile_shared(tmp_path, "int SSL_write(void*a,const void*b,int n){return n;}\n"
                                    "int SSL_read(void*a,void*b,int n){return n;}\n"
                                    "static int SSL_free(void*a){return 0;}\n"  # not exported
                                    "int SSL_read_ex_helper(void){return 0;}\n"
                                    "int call_free(void){return SSL_free(0);}\n", "libfake.so")
    assert elfsyms.exported_ssl_functions(str(lib)) == {"SSL_write", "SSL_read"}
    none = _compile_shared(tmp_path, "int other(void){return 1;}\n", "libnone.so")
    assert elfsyms.exported_ssl_functions(str(none)) == frozenset()


def test_exported_functions_never_raise_on_bad_files(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("not an elf")
    cut = tmp_path / "cut.so"
    cut.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 20)
    garbage = tmp_path / "garbage.so"
    garbage.write_bytes(b"\x7fELF\x02\x01\x01\0" + os.urandom(4000))
    for p in (text, cut, garbage, tmp_path / "missing.so", tmp_path):
        assert elfsyms.exported_ssl_functions(str(p)) == frozenset()


@pytest.mark.parametrize("path, expect", [
    ("/usr/lib/x86_64-linux-gnu/libssl.so.3", set(elfsyms.SSL_FUNCTIONS)),
    ("/usr/bin/node", set(elfsyms.SSL_FUNCTIONS)),  # bundles OpenSSL and exports it
    ("/usr/bin/curl", set()),  # links libssl: probed there, not in its own image
])
def test_exported_functions_of_system_files(path, expect):
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed here")
    assert elfsyms.exported_ssl_functions(path) == expect


# --- target discovery with a fake /proc -----------------------------------------------------------------


def _maps_line(path: Path, shown: str | None = None) -> str:
    st = os.stat(path)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    return f"7f0000000000-7f0000001000 r-xp 00000000 {dev} {st.st_ino}                   {shown or path}\n"


def _proc(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    files = tmp_path / "files"
    (files / "lib").mkdir(parents=True)
    (files / "bin").mkdir()
    libssl = files / "lib" / "libssl.so.3"
    libssl.write_bytes(b"ssl")
    nss = files / "lib" / "libssl3.so"  # NSS, a different API: never a target
    nss.write_bytes(b"nss")
    node = files / "bin" / "node"
    node.write_bytes(b"node")
    python = files / "bin" / "python3"
    python.write_bytes(b"python")
    cached = files / "lib" / "libssl.so.1.1"
    cached.write_bytes(b"old ssl")
    alias = files / "usr-lib"
    alias.symlink_to(files / "lib")
    container_root = tmp_path / "proc" / "300" / "root"
    inside = container_root / "opt" / "ssl"
    inside.mkdir(parents=True)
    box_ssl = inside / "libssl.so.3"
    box_ssl.write_bytes(b"container ssl")
    proc = tmp_path / "proc"
    for pid, exe, maps in (
        (100, python, _maps_line(libssl) + _maps_line(nss)),
        (200, python, _maps_line(alias / "libssl.so.3", str(alias / "libssl.so.3")) +
         _maps_line(libssl).replace(str(libssl), str(libssl) + " (deleted)")),
        (300, python, _maps_line(box_ssl, "/opt/ssl/libssl.so.3")),
        (400, node, ""),
        (999, python, _maps_line(libssl)),  # the scanner itself
    ):
        d = proc / str(pid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "maps").write_text(maps)
        (d / "exe").symlink_to(exe)
        (d / "comm").write_text(exe.name + "\n")
    (proc / "self").mkdir()
    return proc, {"libssl": libssl, "node": node, "python": python, "cached": cached, "box": box_ssl}


def test_scan_finds_libraries_executables_and_cache_once_per_inode(tmp_path):
    proc, f = _proc(tmp_path)
    exports = {f["libssl"].name: frozenset(elfsyms.SSL_FUNCTIONS), "node": frozenset(elfsyms.SSL_FUNCTIONS),
               "libssl.so.1.1": frozenset({"SSL_write", "SSL_read"})}
    reads: list[str] = []

    def fake_exports(path: str) -> frozenset[str]:
        reads.append(path)
        name = os.path.basename(os.path.realpath(path))
        return exports.get(name, frozenset())

    scanner = Scanner(str(proc), fake_exports, ldconfig=lambda: [str(f["cached"])], self_pid=999)
    found = scanner.scan()
    by_path = {t.display: t for t in found.values()}
    lib = by_path[str(f["libssl"])]
    assert lib.kind == "lib" and lib.pids == {100, 200}  # the alias path is the same inode
    box = by_path["/opt/ssl/libssl.so.3"]
    assert box.pids == {300} and box.path == str(proc / "300" / "root" / "opt" / "ssl" / "libssl.so.3")
    node = by_path[str(f["node"])]
    assert node.kind == "exe" and node.pids == {400} and node.symbols == frozenset(elfsyms.SSL_FUNCTIONS)
    cached = by_path[str(f["cached"])]
    assert cached.pids == set() and cached.symbols == {"SSL_write", "SSL_read"}
    assert len(found) == 4  # no NSS libssl3.so, no deleted mapping, python exports nothing
    # the executable verdicts are cached per inode: a rescan reads no executable again
    n_exe_reads = sum(1 for p in reads if p.endswith("/exe"))
    scanner.scan()
    assert sum(1 for p in reads if p.endswith("/exe")) == n_exe_reads


def test_parse_maps_line():
    assert parse_maps_line("7f-8f r-xp 00000000 fd:01 1234   /usr/lib/libssl.so.3\n") == (
        (os.makedev(0xFD, 1), 1234), "/usr/lib/libssl.so.3")
    assert parse_maps_line("7f-8f rw-p 00000000 00:00 0 [heap]") is None
    assert parse_maps_line("7f-8f r-xp 00000000 fd:01 1234 /x/libssl.so.3 (deleted)") is None
    assert parse_maps_line("garbage") is None
    assert parse_maps_line("7f-8f r-xp 00000000 zz:01 1234 /x") is None


def test_ldconfig_parse():
    out = ("1234 libs found in cache `/etc/ld.so.cache'\n"
           "\tlibssl3.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl3.so\n"
           "\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3\n"
           "\tlibssl.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so\n"
           "\tlibcrypto.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libcrypto.so.3\n")
    assert ldconfig_libssl(lambda: out) == ["/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libssl.so"]
    assert ldconfig_libssl(lambda: "") == []


def test_process_identity(tmp_path):
    proc, f = _proc(tmp_path)
    assert process_identity(str(proc), 400, "x") == {"pid": 400, "comm": "node", "exe": str(f["node"])}
    assert process_identity(str(proc), 12345, "gone") == {"pid": 12345, "comm": "gone", "exe": None}


# --- prerequisites --------------------------------------------------------------------------------------


def test_kernel_version_and_caps_parsing():
    assert prereqs.kernel_version("6.18.44-fc-v782") == (6, 18)
    assert prereqs.kernel_version("5.4.0-1103-aws") == (5, 4)
    assert prereqs.kernel_version("weird") == (0, 0)
    status = "Name:\tx\nCapEff:\t000001ffffffffff\n"
    assert prereqs.effective_caps(status) == 0x1FFFFFFFFFF
    assert prereqs.effective_caps("nothing") == 0


@pytest.mark.parametrize("euid, caps, ok", [
    (0, 1 << prereqs.CAP_SYS_ADMIN, True),
    (1000, (1 << prereqs.CAP_BPF) | (1 << prereqs.CAP_PERFMON), True),
    (1000, 1 << prereqs.CAP_BPF, False),  # CAP_BPF alone cannot attach uprobes
    (0, 0, False),  # root without capabilities (a locked-down container)
    (1000, 0, False),
])
def test_privileges(euid, caps, ok):
    c = prereqs.check_privileges(caps=caps, euid=euid)
    assert c.ok is ok
    if not ok:
        assert "CAP_BPF + CAP_PERFMON" in c.detail and c.fix


# --- kernel header tree ---------------------------------------------------------------------------------


def test_merge_tree_like_debian_split_headers(tmp_path):
    common = tmp_path / "common"
    arch = tmp_path / "arch"
    for d in (common / "include" / "linux", common / "scripts", common / "arch" / "x86" / "include",
              arch / "include" / "generated", arch / "arch" / "x86" / "include" / "generated"):
        d.mkdir(parents=True)
    (common / "include" / "linux" / "kconfig.h").write_text("common")
    (common / "Makefile").write_text("common make")
    (common / "scripts" / "tool").write_text("script")
    (arch / "include" / "generated" / "autoconf.h").write_text("arch")
    (arch / "arch" / "x86" / "include" / "generated" / "asm.h").write_text("arch asm")
    (arch / "Makefile").write_text("arch make")
    (arch / "scripts").symlink_to("../../lib/linux-kbuild-6.1/scripts")  # dangling in Debian's package
    (arch / "tools").symlink_to("../../lib/linux-kbuild-6.1/tools")
    tree = tmp_path / "tree"
    tree.mkdir()
    headers.merge_tree(common, tree)
    headers.merge_tree(arch, tree)
    assert (tree / "include" / "linux" / "kconfig.h").read_text() == "common"
    assert (tree / "include" / "generated" / "autoconf.h").read_text() == "arch"
    assert (tree / "arch" / "x86" / "include" / "generated" / "asm.h").exists()
    assert (tree / "Makefile").read_text() == "arch make"  # the architecture's file wins
    assert (tree / "scripts").is_dir() and not (tree / "scripts").is_symlink()  # the link did not shadow it
    assert (tree / "tools").is_symlink()  # nothing there before: kept


def test_header_state_honours_bcc_kernel_source(tmp_path, monkeypatch):
    good = tmp_path / "good"
    (good / "include").mkdir(parents=True)
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(good))
    st = headers.state(check_apt=False)
    assert st.kind == "env" and st.ready and st.env() == {"BCC_KERNEL_SOURCE": str(good)}
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(tmp_path / "nope"))
    st = headers.state(check_apt=False)
    assert st.kind == "missing" and not st.ready and st.fix
    with pytest.raises(headers.HeaderError):
        headers.ensure()


def test_header_cache_is_found_under_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if headers._system_build() or os.path.exists("/sys/kernel/kheaders.tar.xz"):
        pytest.skip("this kernel has its own headers: the cache is not consulted")
    assert headers.state(check_apt=False).kind == "fetch"
    d = tmp_path / "heron" / "kernel-headers" / "linux-headers-9.9.9-test"
    (d / "tree" / "include").mkdir(parents=True)
    assert headers.state(check_apt=False).kind == "fetch"  # no completion marker: half a download
    (d / headers.MARKER).write_text("x")
    st = headers.state(check_apt=False)
    assert st.kind == "cache" and st.env() == {"BCC_KERNEL_SOURCE": str(d / "tree")}
