"""The paper's study (:mod:`probe.study` is its front): how it runs, its report and its claims.

:mod:`probe.studies.experiments` (the experiments, sizes, lens sets and settings),
:mod:`probe.studies.simulation` (the test sets and the simulator wrappers they are drawn
through), :mod:`probe.studies.run` (:func:`~probe.studies.run.run_study`, step by step),
:mod:`probe.studies.progress` (its clocks and progress lines), :mod:`probe.studies.population`
(selection functions and yields over a survey's lens population), :mod:`probe.studies.report`
(figures, tables, report.html), :mod:`probe.studies.galleries` (the images behind a curve),
:mod:`probe.studies.paper` (the paper's claims, judged) and :mod:`probe.studies.study_selection`
(selection functions from a study's scores).
"""
