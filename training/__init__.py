"""Training: data, features, LightGBM, evaluation, the MLflow registry.

``features`` is imported first: its package guards the process against what importing pandera
does (``SPARK_LOCAL_IP``, pyspark's pandas-3 warning), before any module here imports pandera.
"""

import features  # noqa: F401
