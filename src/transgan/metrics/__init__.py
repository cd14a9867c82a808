"""Sample-quality evaluation: FID, IS, KID and precision/recall by the standard protocol, plus
digits metrics. ``metrics.registry`` names the metrics without loading torch."""
