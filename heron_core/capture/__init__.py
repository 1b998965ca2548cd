"""Capture stage: capture files → frames → TCP segments with in-band heartbeats (architecture.md §1)."""

from heron_core.capture.decode import LINKTYPES, decode_frame, decode_span
from heron_core.capture.pcapfile import CaptureFileError, Frame, Span, read_frames, read_spans
from heron_core.capture.source import frames_to_records, open_file_source, source_id_for, spans_to_records

__all__ = [
    "LINKTYPES",
    "CaptureFileError",
    "Frame",
    "Span",
    "decode_frame",
    "decode_span",
    "frames_to_records",
    "open_file_source",
    "read_frames",
    "read_spans",
    "source_id_for",
    "spans_to_records",
]
