"""Finished runs read back and set side by side: what compare and a sweep's summary show."""
