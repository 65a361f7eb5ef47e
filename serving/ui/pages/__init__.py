"""The worklist's pages, one module per group: :mod:`~serving.ui.pages.sign_in`,
:mod:`~serving.ui.pages.worklist`, :mod:`~serving.ui.pages.shipment`,
:mod:`~serving.ui.pages.model`; :class:`serving.ui.app.WorklistApp` routes to them."""
