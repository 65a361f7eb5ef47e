"""The four jobs behind ``cargorisk train / evaluate / promote / score``, one module each:
each orchestrates the pure steps (dataset, split, fit, metrics, plots) and the MLflow side
(registry).

* :mod:`training.jobs.train` - ``train_job``: read, features, fit the candidates, evaluate,
  log and register.
* :mod:`training.jobs.evaluate` - ``evaluate_job``: a registered model on any data directory.
* :mod:`training.jobs.promote` - the promotion gate (``gate_metrics``, ``gate_decision``) and
  ``promote_job``.
* :mod:`training.jobs.score` - ``score_job``: batch scoring of a file, with reasons.
* :mod:`training.jobs.shared` - what the jobs share: progress lines, timed steps, a period mask.
"""
