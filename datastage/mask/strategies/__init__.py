"""The built-in masking strategies, one module per family; importing the package registers them all."""

from datastage.mask.strategies import address, basic, formats, jsonpaths, person, scrub, text

__all__ = ["address", "basic", "formats", "jsonpaths", "person", "scrub", "text"]
