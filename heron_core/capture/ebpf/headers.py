"""A kernel header tree for bcc, found or fetched without installing anything (docs/ebpf.md).

bcc compiles the probe program at start and needs kernel headers. Kernels without a headers package
(this VM runs 6.18 with none, no ``/lib/modules``, no ``CONFIG_IKHEADERS``) can still compile it: the
program only uses uprobe registers and basic types, so *any* consistent header tree of the same
architecture works. In order of preference:

1. ``$BCC_KERNEL_SOURCE`` set by the user;
2. ``/lib/modules/$(uname -r)/build`` (a headers package of the running kernel) — bcc finds it itself;
3. ``/sys/kernel/kheaders.tar.xz`` (``CONFIG_IKHEADERS``) — bcc unpacks it itself;
4. heron's cache, ``$XDG_CACHE_HOME/heron/kernel-headers/<package>`` (default ``~/.cache``), filled on
   first use by ``apt-get download`` of the distribution's headers package (the exact
   ``linux-headers-$(uname -r)`` when apt knows it, else what ``linux-headers-<arch>`` depends on) and
   its ``-common`` part, unpacked with ``dpkg -x`` and merged into one tree — bcc needs a single,
   non-split tree. About 12 MB downloaded, 80 MB unpacked, a few seconds; nothing is installed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("heron")

MARKER = ".heron-complete"
_APT_TIMEOUT_S = 300


class HeaderError(Exception):
    """No header tree and none could be fetched: ``why`` and ``fix`` make the one-line error."""

    def __init__(self, why: str, fix: str) -> None:
        super().__init__(f"{why} (fix: {fix})")
        self.why = why
        self.fix = fix


@dataclass
class HeaderState:
    """Where bcc will get headers: ``kind`` is env | system | kheaders | cache | fetch | missing."""

    kind: str
    path: str | None
    detail: str
    fix: str | None = None

    @property
    def ready(self) -> bool:
        return self.kind in ("env", "system", "kheaders", "cache")

    def env(self) -> dict[str, str]:
        """Environment for the agent (``BCC_KERNEL_SOURCE`` when heron chose the tree)."""
        return {"BCC_KERNEL_SOURCE": self.path} if self.kind in ("env", "cache") and self.path else {}


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "heron" / "kernel-headers"


def _run(args: list[str], cwd: str | None = None, timeout: float = _APT_TIMEOUT_S) -> subprocess.CompletedProcess:
    env = dict(os.environ, LC_ALL="C", DEBIAN_FRONTEND="noninteractive")
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env)


def _depends(pkg: str) -> list[str]:
    proc = _run(["apt-cache", "depends", pkg], timeout=60)
    if proc.returncode != 0:
        return []
    out = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("Depends:"):
            out.append(line.split(":", 1)[1].strip().strip("<>"))
    return out


def _known(pkg: str) -> bool:
    proc = _run(["apt-cache", "show", "--no-all-versions", pkg], timeout=60)
    return proc.returncode == 0 and "Package:" in proc.stdout


def _arch() -> str:
    proc = _run(["dpkg", "--print-architecture"], timeout=30)
    return proc.stdout.strip() or {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def header_packages() -> tuple[str, list[str]]:
    """``(arch package, [common packages])`` to download; ``HeaderError`` when apt cannot say."""
    if shutil.which("apt-cache") is None or shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise HeaderError(f"no kernel headers for {platform.release()} and no apt to fetch some",
                          "install your distribution's kernel headers, or set BCC_KERNEL_SOURCE=<header tree>")
    exact = f"linux-headers-{platform.release()}"
    if _known(exact):
        pkg = exact
    else:
        meta = f"linux-headers-{_arch()}"
        deps = [d for d in _depends(meta) if d.startswith("linux-headers-")]
        if not deps:
            raise HeaderError(f"no kernel headers for {platform.release()}, and apt knows no {meta}",
                              "apt-get update, or set BCC_KERNEL_SOURCE=<header tree>")
        pkg = deps[0]
    common = [d for d in _depends(pkg) if d.startswith("linux-headers-") and d != pkg]
    return pkg, common


def _system_build() -> str | None:
    build = f"/lib/modules/{platform.release()}/build"
    return build if os.path.isdir(os.path.join(build, "include")) else None


def state(check_apt: bool = True) -> HeaderState:
    """Where headers would come from now (no download). ``check_apt`` asks apt which package would be
    fetched (a short ``apt-cache`` call), for the doctor's message."""
    env = os.environ.get("BCC_KERNEL_SOURCE")
    if env:
        if os.path.isdir(os.path.join(env, "include")):
            return HeaderState("env", env, f"BCC_KERNEL_SOURCE={env}")
        return HeaderState("missing", env, f"BCC_KERNEL_SOURCE={env} is not a header tree (no include/)",
                           "point BCC_KERNEL_SOURCE at a merged kernel header tree, or unset it")
    build = _system_build()
    if build:
        return HeaderState("system", build, f"headers of the running kernel at {build}")
    if os.path.exists("/sys/kernel/kheaders.tar.xz"):
        return HeaderState("kheaders", "/sys/kernel/kheaders.tar.xz", "in-kernel headers (CONFIG_IKHEADERS)")
    root = cache_root()
    if root.is_dir():
        for d in sorted(root.iterdir(), reverse=True):
            if (d / MARKER).exists():
                return HeaderState("cache", str(d / "tree"), f"downloaded {d.name} at {d / 'tree'}")
    if not check_apt:
        return HeaderState("fetch", None, f"no headers for {platform.release()}; will be downloaded on first use")
    try:
        pkg, common = header_packages()
    except HeaderError as exc:
        return HeaderState("missing", None, exc.why, exc.fix)
    return HeaderState("fetch", None,
                       f"no headers for {platform.release()}; heron downloads {' + '.join([pkg, *common])} "
                       f"(apt-get download, not installed) into {root} on first use",
                       "heron doctor --fetch-headers (or just run heron run --ebpf)")


def ensure() -> HeaderState:
    """A ready ``HeaderState``, downloading into the cache when needed; ``HeaderError`` otherwise."""
    st = state(check_apt=False)
    if st.ready:
        return st
    if st.kind == "missing":
        raise HeaderError(st.detail, st.fix or "set BCC_KERNEL_SOURCE=<header tree>")
    return fetch()


def fetch() -> HeaderState:
    """Download and merge the header tree into the cache (idempotent; serialized by a file lock)."""
    pkg, common = header_packages()
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HeaderError(f"cannot create {root}: {exc.strerror}", "set XDG_CACHE_HOME to a writable directory")
    final = root / pkg
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two heron processes starting at once download once
        if (final / MARKER).exists():
            return HeaderState("cache", str(final / "tree"), f"downloaded {pkg} at {final / 'tree'}")
        log.warning("eBPF: no kernel headers for %s; downloading %s (apt-get download, nothing is installed)",
                    platform.release(), " + ".join([pkg, *common]))
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
            proc = _run(["apt-get", "download", pkg, *common], cwd=tmp)
            debs = sorted(Path(tmp).glob("*.deb"))
            if proc.returncode != 0 or len(debs) < 1 + len(common):
                why = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.startswith("E:")),
                           proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no .deb downloaded")
                raise HeaderError(f"could not download {pkg}: {why}",
                                  "apt-get update, check network access to the mirror, or set BCC_KERNEL_SOURCE")
            unpacked = Path(tmp) / "root"
            for deb in debs:
                x = _run(["dpkg", "-x", str(deb), str(unpacked)])
                if x.returncode != 0:
                    raise HeaderError(f"could not unpack {deb.name}: {x.stderr.strip()[:200]}",
                                      "check free disk space in " + str(root))
            tree = Path(tmp) / "tree"
            tree.mkdir()
            src = unpacked / "usr" / "src"
            for name in common:  # the shared part first, the architecture's files over it
                if (src / name).is_dir():
                    merge_tree(src / name, tree)
            if not (src / pkg).is_dir():
                raise HeaderError(f"{pkg} has no /usr/src/{pkg}", "set BCC_KERNEL_SOURCE=<header tree>")
            merge_tree(src / pkg, tree)
            if not (tree / "include" / "linux" / "kconfig.h").exists():
                raise HeaderError(f"the merged {pkg} tree has no include/linux/kconfig.h",
                                  "set BCC_KERNEL_SOURCE=<header tree>")
            staging = Path(tmp) / "final"
            staging.mkdir()
            tree.rename(staging / "tree")
            (staging / MARKER).write_text(pkg + "\n")
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
    log.warning("eBPF: kernel headers ready at %s", final / "tree")
    return HeaderState("cache", str(final / "tree"), f"downloaded {pkg} at {final / 'tree'}")


def merge_tree(src: Path, dst: Path) -> None:
    """Move ``src``'s entries into ``dst``: directories merge, files replace; a symlink is kept only
    where ``dst`` has nothing (Debian's ``scripts``/``tools`` links point into linux-kbuild, which is
    not fetched, and must not shadow the real directories of the common part)."""
    for entry in os.scandir(src):
        target = dst / entry.name
        if entry.is_symlink():
            if not os.path.lexists(target):
                os.symlink(os.readlink(entry.path), target)
            continue
        if entry.is_dir():
            if target.is_dir() and not target.is_symlink():
                merge_tree(Path(entry.path), target)
            else:
                if os.path.lexists(target):
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    else:
                        target.unlink()
                os.rename(entry.path, target)
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry.path, target)
