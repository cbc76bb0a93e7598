"""Long runs chunk by chunk: generation of sets on Dask or in-process."""
