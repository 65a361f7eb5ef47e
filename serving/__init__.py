"""The scoring service: API, online features, store, worklist UI.

``features`` is imported first: its package guards the process against what importing pandera
does (``SPARK_LOCAL_IP``, pyspark's pandas-3 warning), before any module here imports pandera.
"""

import features  # noqa: F401
