"""What judges a model and describes data: metrics from additive per-block totals (``metrics``,
``curves``), a fitted model's weights (``inspection``) and figures (``plots``), DESCRIBE
(``description``), TUNE's trials table (``trials``) and the data profile (``profile``). The
product layer, beside ``oocml.model``: the engine scores holdouts with ``metrics``."""
