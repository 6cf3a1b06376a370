"""Checks run on the loaded shadow before the swap: one module per family in ``checks``, their order in ``registry``."""
