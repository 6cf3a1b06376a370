"""Verified artifacts: an environment's verified copy as signed files, and their checked restore.

``export`` writes a folder (a SQLite file, Parquet per table, or a ``pg_dump -Fd`` directory) with
``manifest.json``, ``SHA256SUMS`` and its SSHSIG signature ``SHA256SUMS.sig``; ``import`` checks all
of it before it touches the target and restores through the target's shadow and swap.
"""
