"""Sets on disk and their provenance: HDF5 datasets, Zarr stores, FITS export, contact sheets."""
