"""Physics: ray tracing, light profiles, PSFs, SEDs, distances; the lenstronomy reference."""
