"""The check families run on the loaded shadow, one module each (:mod:`datastage.verify.registry` orders them)."""
