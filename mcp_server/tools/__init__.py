"""The butler's tools, one module per domain."""
