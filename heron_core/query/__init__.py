"""UI-free queries over the store shared by the TUI and the REST API (lists, filters, metrics, details)."""
