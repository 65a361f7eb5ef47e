import os as _os
import warnings as _warnings

# pandera, imported by the contract, sets SPARK_LOCAL_IP=127.0.0.1 in the process environment
# and never takes it back (pandera issue #2344): a Spark driver started later would bind to
# loopback and a cluster's executors could not reach it. What the environment said before any
# of our modules imported pandera, for features.engine.spark_session to restore.
ENV_BEFORE_PANDERA: dict[str, str | None] = {
    name: _os.environ.get(name) for name in ("SPARK_LOCAL_IP", "PYARROW_IGNORE_TIMEZONE")
}

# pandera imports pyspark.pandas when pyspark is installed (the spark extra), which warns about
# pandas 3 on every import; cargorisk never uses pyspark.pandas (the engine uses Spark SQL).
_warnings.filterwarnings(
    "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
)
