"""The regression gate's parts: suites, expectations, verdicts and reports.

:mod:`probe.gate` runs a suite (:mod:`probe.gating.suite`) of expectations
(:mod:`probe.gating.expectations`), judged by :mod:`probe.gating.verdicts` and reported by
:mod:`probe.gating.report`.
"""
