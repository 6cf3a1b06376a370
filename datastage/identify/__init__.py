"""What identifiers look like: the taxonomy, reference data, whole-value detectors and spans in text."""
