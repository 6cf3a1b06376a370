"""Verified artifacts: an environment's copy as signed files (export) and back (import)."""
