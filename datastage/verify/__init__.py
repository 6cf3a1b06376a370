"""Checks run on the loaded shadow before the swap."""
