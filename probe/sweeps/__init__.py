"""Sweeps: the sensitivity probe (:class:`probe.Probe`), its results, categories and figures.

A sweep scores a model over images while one parameter varies (binned, perturbed or
re-simulated); :mod:`probe.sweeps.result` holds the outcome, :mod:`probe.sweeps.plotting` draws it.
"""
