"""Presentation for the command line: what a command prints, and how.

- :mod:`datastage.present.streams`: the consoles, ``--json`` output and the redacting
  stdout/stderr every command runs inside;
- :mod:`datastage.present.progress`: progress bars on a terminal;
- :mod:`datastage.present.views`: text and table renderings of step results.

It renders the objects :mod:`datastage.api` returns and never calls the library itself.
"""
