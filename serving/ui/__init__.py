"""The targeting officers' worklist, served under ``/ui`` by the scoring service.

See :mod:`serving.ui.app` (pages), :mod:`serving.ui.worklist` (the inspection plan: ranking,
capacity cut line, exploration picks), :mod:`serving.ui.session` (signed session cookies) and
:mod:`serving.ui.model_info` (the champion's test report from MLflow).
"""
