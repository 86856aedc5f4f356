"""Run the stream notebook's per-batch function (write_batch) on static
micro-batches with a local Spark and Delta: the logic each Kinesis
micro-batch meets on Databricks, without Kinesis.

Usage: stream_batches.py NOTEBOOK WAREHOUSE BATCHES_JSON
BATCHES_JSON: [{"kind": "pin", "batch_id": 0, "data": ["<record text>", ...]}, ...]
Prints, after each batch, {"rows": n, "dead_letters": n, "dead_reasons": {...}}
of that kind's tables, one JSON line per batch."""
import importlib.util
import json
import sys

from delta import configure_spark_with_delta_pip
from pyspark.sql import SparkSession

notebook_path, warehouse, batches_path = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("stream_notebook", notebook_path)
notebook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(notebook)

spark = configure_spark_with_delta_pip(
    SparkSession.builder.master("local[1]")
    .config("spark.sql.warehouse.dir", warehouse)
    .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
    .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
).getOrCreate()
spark.conf.set("spark.sql.ansi.enabled", "false")
spark.conf.set("spark.sql.session.timeZone", "UTC")
namespace = "pinterest_test"
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {notebook.quoted(namespace)}")
cleaning = {kind: sql for kind, _table, sql in notebook.CLEANING}

with open(batches_path, encoding="utf-8") as f:
    batches = json.load(f)
for batch in batches:
    kind = batch["kind"]
    df = spark.createDataFrame([(d,) for d in batch["data"]], "data STRING")
    notebook.write_batch(kind, cleaning[kind], namespace)(df, batch["batch_id"])
    rows = spark.table(notebook.table_name(namespace, kind)).count()
    dead = spark.table(notebook.table_name(namespace, kind, "dead_letters"))
    reasons = {r["reason"]: r["count"] for r in dead.groupBy("reason").count().collect()}
    print(json.dumps({"rows": rows, "dead_letters": dead.count(), "dead_reasons": reasons}), flush=True)
spark.stop()
