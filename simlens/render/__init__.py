"""Images from truth rows: stamps (galsim + ray tracing) and injection into real cutouts."""
