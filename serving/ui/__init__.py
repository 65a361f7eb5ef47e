"""The targeting officers' worklist, served under ``/ui`` by the scoring service.

See :mod:`serving.ui.app` (the app and its routes), :mod:`serving.ui.pages` (one module per
page group), :mod:`serving.ui.session_gate` (what every page stands on: the session, the
officer, rendering), :mod:`serving.ui.format` (how values are shown),
:mod:`serving.ui.worklist` (the inspection plan: ranking, capacity cut line, exploration
picks), :mod:`serving.ui.session` (signed session cookies) and :mod:`serving.ui.model_info`
(the champion's test report from MLflow).
"""
