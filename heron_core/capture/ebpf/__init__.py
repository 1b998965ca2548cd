"""eBPF TLS source (``--ebpf``): plaintext at the TLS boundary from uprobes on OpenSSL (docs/ebpf.md).

Two halves, because bcc (the BPF compiler bindings) is a distribution package for the *system* Python
while heron usually runs from a virtualenv of another interpreter:

* the **agent** (``agent.py`` + ``program.bpf.c``, with the stdlib-only ``frames``, ``targets`` and
  ``elfsyms``) runs under the Python that has bcc, compiles and attaches the probes, finds targets and
  streams length-prefixed frames on its stdout;
* **heron's side** (``source.EbpfSource``, ``convert``, ``prereqs``, ``headers``) checks prerequisites,
  provides a kernel header tree, starts the agent and turns its chunks into TCP-like segments for the
  usual reassembly → HTTP → wire-decode pipeline.

Nothing here imports bcc into heron's process; ``import heron_core.capture.ebpf`` is cheap.
"""

from .source import EbpfSource

__all__ = ["EbpfSource"]
