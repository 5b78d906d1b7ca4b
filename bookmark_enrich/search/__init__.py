"""Search what was enriched: the query language, the full-text index, the vectors.

Everything lives in the cache file, beside the results it indexes; see
:mod:`.index` for how the index stays current.
"""
