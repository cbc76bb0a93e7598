"""Truth tables: drawing lenses, non-lens kinds and neighbours under user controls, with per-object
seeds."""
