"""Where data comes from and goes: local paths and any fsspec URL (``storage``), whole-or-nothing
local files (``files``), sources opened as dask DataFrames (``sources``), their partitions read a
batch at a time (``partitions``, ``dask_plans``), WHERE conditions (``conditions``), result
folders committed by a manifest (``outputs``), and text that does not parse, named
(``text_faults``). The parts layer: it imports only the base layer and itself."""
