"""The regression gate: suites, expectations, test sets, scores, verdicts and reports.

:mod:`probe.gating.run` runs a suite (:mod:`probe.gating.suite`) of expectations
(:mod:`probe.gating.expectations`) on test sets (:mod:`probe.gating.sets`), scoring the models
unit by unit (:mod:`probe.gating.units`); :mod:`probe.gating.verdicts` judges them,
:class:`~probe.gating.result.GateResult` holds the outcome and :mod:`probe.gating.report`
writes it, with the images of failed bins (:mod:`probe.gating.failed_bins`).
"""
