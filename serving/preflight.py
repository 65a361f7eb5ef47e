"""What must hold before the service may start (:func:`preflight`), in one place for
``cargorisk serve`` and the service itself. Beside the edge and the worklist rather than in
either: it checks both (the uvicorn proxy setting of :mod:`serving.edge`, the worklist's
signing secret of :mod:`serving.ui.session`)."""

from __future__ import annotations

import os

from features.errors import CargoriskError
from serving.edge import UVICORN_PROXIES
from serving.ui.session import load_secret


def preflight(settings) -> None:
    """What must hold before the service may start, checked by ``cargorisk serve`` before it
    starts BentoML and again by the service itself (under a bare ``bentoml serve`` a failed
    start is retried by BentoML's process manager and the reason logged each time):

    * the worklist's signing secret is at least 32 bytes (created if missing);
    * uvicorn was not told to believe X-Forwarded-For from some address
      (``FORWARDED_ALLOW_IPS``): it would rewrite client addresses before :class:`Edge`
      sees the connection.

    Raises :class:`features.errors.CargoriskError` saying what is wrong and what to do."""
    value = os.environ.get("FORWARDED_ALLOW_IPS")
    if value is not None and value.strip() != UVICORN_PROXIES:
        raise CargoriskError(
            f"FORWARDED_ALLOW_IPS={value!r}: uvicorn would take client addresses from "
            "X-Forwarded-For itself; unset it and name reverse proxies in the setting "
            "trusted_proxies (CARGORISK_TRUSTED_PROXIES)"
        )
    secret = settings.ui_secret
    load_secret(settings.home, secret.get_secret_value() if secret is not None else None)
