"""Where a refresh's chunks run: in this process, in local worker processes, or on a Dask cluster.

A chunk is one slice of one table (a key range, a block range, a slice of planned keys). Its
work is a pure function of the chunk and of what every worker holds in memory for the run (the
plan, the masking key): read the chunk's rows from the source snapshot, mask them, collect the
source values' keyed hashes, write them into the shadow, return counts and evidence. Every
executor runs the same functions (:mod:`datastage.executor.base`).
"""
