"""The source: reflection, read-only snapshot sessions, server identity, value codecs."""
