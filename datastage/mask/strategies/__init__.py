"""The built-in masking strategies, one module per family; importing the package registers them all."""

from datastage.mask.strategies import basic, formats, jsonpaths, person, scrub, text

__all__ = ["basic", "formats", "jsonpaths", "person", "scrub", "text"]
