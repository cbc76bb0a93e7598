"""The paper's study around :mod:`probe.study`: its report, galleries, paper claims, selection.

:mod:`probe.studies.report` (figures, tables, report.html), :mod:`probe.studies.galleries` (the
images behind a curve), :mod:`probe.studies.paper` (the paper's claims, judged) and
:mod:`probe.studies.study_selection` (selection functions from a study's scores).
"""
