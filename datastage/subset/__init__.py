"""Subsetting: roots, seeded sampling, the row-level closure over the FK graph, key sets, extraction."""
