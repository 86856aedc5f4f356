{% import "databricks/sql.macros" as sql -%}
# Databricks notebook source
# Pinterest pipeline, batch job for deployment {{ uid }}.
#
# Rendered by `cargo xtask render` from templates/files/databricks/batch_notebook.py.
# The cleaning and the queries below are the SQL files of templates/sql/, the
# same ones `pipeline batch` runs on DataFusion; edit those, not this file.
#
# On Databricks the parameters are widgets. The same file runs unchanged on
# classic, standard (shared) and serverless compute, so it uses only what
# Spark Connect offers: no RDDs, no caching, no input_file_name(), and only
# the Spark confs serverless accepts. It also runs under spark-submit on any
# master and under plain python (`python batch_notebook.py --help`), which is
# how the project's tests check it against `pipeline batch`.

# COMMAND ----------

import argparse
import datetime
import json
import os
import re

from pyspark.sql import SparkSession
from pyspark.sql.functions import coalesce, col, lit, struct, to_json, when
from pyspark.sql.types import NumericType

UID = "{{ uid }}"
DEFAULT_SOURCE = "{{ databricks.source }}"
# Where the results persist on Databricks: a schema of the current catalog,
# or catalog.schema.
DEFAULT_OUTPUT = "{{ databricks.output }}"

{{ sql::raw_schemas() }}

{{ sql::cleaning() }}

# SPEC section 5. Each result is also registered as a view named by its id
# (3b reads 3a).
QUERIES = [
{%- for query in queries %}
    ("{{ query.id }}", "{{ query.title }}", {{ query.sql | py_sql }}),
{%- endfor %}
]

# COMMAND ----------


class Parameters:
    """What a run reads, which run it is, and where its results go."""

    def __init__(self, source, run_date, output, json_copy=None, master=None, remote=None):
        self.source = source.rstrip("/")
        # The run's date labels every persisted row; a rerun of the same date
        # replaces that date's rows (Airflow passes its data interval's date).
        self.run_date = datetime.date.fromisoformat(run_date) if run_date else datetime.datetime.now(datetime.timezone.utc).date()
        self.output = output or None
        self.json_copy = json_copy
        self.master = master
        self.remote = remote


def parameters():
    """Widgets on Databricks, command-line flags elsewhere (spark-submit, python)."""
    try:
        widgets = dbutils.widgets  # noqa: F821 - defined by Databricks
    except NameError:
        parser = argparse.ArgumentParser(
            description="Pinterest pipeline batch job ({{ uid }}): clean the sink output and run the analysis queries.",
            epilog="Runs under Databricks, spark-submit (any master), or plain python with a local PySpark.",
        )
        parser.add_argument("--source", default=DEFAULT_SOURCE, help="where the S3 sink wrote topics/<topic>/... (default %(default)s)")
        parser.add_argument("--run-date", help="the run's date, YYYY-MM-DD (default: today, UTC); a rerun of a date replaces its rows")
        parser.add_argument(
            "--output",
            help="persist every table as Delta: a namespace (schema or catalog.schema) or a URI (s3a://..., a directory); not persisted unless set",
        )
        parser.add_argument("--json-copy", metavar="DIR", help="also write each table as JSON lines, and the charts, to this local directory")
        parser.add_argument("--master", help="Spark master; by default spark-submit's, or local[*] under plain python")
        parser.add_argument("--remote", help="a Spark Connect server, sc://host:port (SPARK_REMOTE works too)")
        a = parser.parse_args()
        return Parameters(a.source, a.run_date, a.output, a.json_copy, a.master, a.remote)
    widgets.text("source", DEFAULT_SOURCE)
    widgets.text("run_date", "")
    widgets.text("output", DEFAULT_OUTPUT)
    return Parameters(widgets.get("source"), widgets.get("run_date"), widgets.get("output"))


def session(params):
    """Databricks' session; else spark-submit's; else one of our own.

    A master is set only when asked: under spark-submit the cluster manager's
    is the one to use. Under plain python (no JVM yet) the Delta jars of a
    pip-installed delta-spark are added, and Spark's UI stays off.
    """
    try:
        return spark  # noqa: F821 - defined by Databricks
    except NameError:
        pass
    builder = SparkSession.builder.appName("pinterest-batch-{{ uid }}")
    if params.remote:
        return builder.remote(params.remote).getOrCreate()
    if params.master:
        builder = builder.master(params.master)
    if "PYSPARK_GATEWAY_PORT" not in os.environ and "SPARK_REMOTE" not in os.environ:
        builder = builder.config("spark.ui.enabled", "false")
        try:
            from delta import configure_spark_with_delta_pip
        except ImportError:
            pass
        else:
            builder = configure_spark_with_delta_pip(
                builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension").config(
                    "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
                )
            )
    return builder.getOrCreate()


def show(df, title):
    try:
        display(df)  # noqa: F821 - defined by Databricks
    except NameError:
        print(f"\n== {title}")
        df.show(50, truncate=False)


# The bars of `pipeline batch --report` (SPEC 8.10), so that both engines
# show the same picture: a bar per row, at most this many.
CHART_MAX_BARS = 40


def bars(df):
    """A bar per row: labelled with the row's other columns joined by " · ",
    as long as its last numeric column."""
    numeric = [f.name for f in df.schema.fields if isinstance(f.dataType, NumericType)]
    if not numeric:
        return []
    value = numeric[-1]
    labels = [f.name for f in df.schema.fields if f.name != value]
    return [
        {"label": " · ".join("" if row[c] is None else str(row[c]) for c in labels), "value": float(row[value] or 0)}
        for row in df.limit(CHART_MAX_BARS).collect()
    ]


def chart(df, query_id, title, output):
    data = bars(df)
    if output:
        with open(os.path.join(output, f"chart_{query_id}.json"), "w", encoding="utf-8") as f:
            json.dump(data, f)
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(data) + 1.2))
    ax.barh([d["label"] for d in data], [d["value"] for d in data], color="#3b6ea8")
    ax.invert_yaxis()
    ax.set_title(title)
    try:
        display(fig)  # noqa: F821 - defined by Databricks
    except NameError:
        if output:
            fig.savefig(os.path.join(output, f"chart_{query_id}.png"), bbox_inches="tight")
    plt.close(fig)


def read_raw(spark_session, kind, path):
    """The raw rows of a kind, and the records refused (SPEC 8.6).

    Spark's JSON reader takes an array of objects on one line as one row per
    element, as `pipeline batch` does. A line that is not JSON, not an object
    or array of objects, or has a field of the wrong type gets
    _corrupt_record; a record without its key column is not a row of its
    kind. Both go to the quarantine instead of failing or vanishing. The
    object a record came from is the file source's _metadata column.
    """
    key = RAW_KEYS[kind]
    records = (
        spark_session.read.schema(RAW_SCHEMAS[kind] + ", _corrupt_record STRING")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .json(path)
        .withColumn("_object", col("_metadata.file_path"))
    )
    refused = col("_corrupt_record").isNotNull() | col(key).isNull()
    rows = records.where(~refused).drop("_corrupt_record", "_object")
    quarantined = records.where(refused).select(
        col("_object").alias("object"),
        coalesce(col("_corrupt_record"), to_json(struct(*[col(c) for c in rows.columns]))).alias("raw"),
        when(col("_corrupt_record").isNotNull(), lit("not JSON, not an object or an array of objects, or a field of the wrong type"))
        .otherwise(lit(f"no `{key}` field: not a {kind} row"))
        .alias("reason"),
    )
    return rows, quarantined


def is_namespace(output):
    """`schema` or `catalog.schema` (a table namespace), not a URI or path."""
    return re.fullmatch(r"`?[A-Za-z0-9_-]+`?(\.`?[A-Za-z0-9_-]+`?)?", output) is not None


def quoted(*parts):
    return ".".join("`" + p.strip("`").replace("`", "``") + "`" for p in parts)


def persist(spark_session, df, params, name):
    """Write a table's rows for this run date as Delta, replacing any rows a
    previous run of the same date wrote (never appending them twice), and
    return them as read back; None when nothing persists."""
    if not params.output:
        return None
    day = params.run_date.isoformat()
    writer = (
        df.withColumn("run_date", lit(day).cast("date"))
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"run_date = DATE'{day}'")
        .partitionBy("run_date")
    )
    if is_namespace(params.output):
        table = quoted(*params.output.split("."), name)
        writer.saveAsTable(table)
        stored = spark_session.read.table(table)
    else:
        path = f"{params.output.rstrip('/')}/{name}"
        writer.save(path)
        stored = spark_session.read.format("delta").load(path)
    return stored.where(col("run_date") == lit(day).cast("date")).drop("run_date")


def save_json(df, params, name):
    # One JSON object per line, nulls kept, so that another engine's output
    # can be compared row by row. DataFrame functions only: this runs on
    # Spark Connect too.
    if not params.json_copy:
        return
    os.makedirs(params.json_copy, exist_ok=True)
    line = to_json(struct(*[col(f"`{c}`") for c in df.columns]), {"ignoreNullFields": "false"})
    with open(os.path.join(params.json_copy, f"{name}.json"), "w", encoding="utf-8") as f:
        for row in df.select(line.alias("line")).collect():
            f.write(row["line"] + "\n")


def keep(spark_session, df, params, name):
    """Persist and copy a table. Later steps read it as persisted: Spark
    Connect has no cache, and reading the Delta table back spares parsing
    the raw JSON again for every query."""
    save_json(df, params, name)
    stored = persist(spark_session, df, params, name)
    return df if stored is None else stored


# COMMAND ----------

params = parameters()
spark_session = session(params)
# The SQL is written for non-ANSI semantics (TRY_CAST, NULL on bad input) and
# UTC timestamps, like DataFusion. Both confs are among the few serverless
# compute lets a notebook set.
spark_session.conf.set("spark.sql.ansi.enabled", "false")
spark_session.conf.set("spark.sql.session.timeZone", "UTC")
if params.output and is_namespace(params.output):
    spark_session.sql(f"CREATE SCHEMA IF NOT EXISTS {quoted(*params.output.split('.'))}")

for kind in ("pin", "geo", "user"):
    path = f"{params.source}/topics/{UID}.{kind}/partition=*/*.json"
    rows, quarantined = read_raw(spark_session, kind, path)
    rows.createOrReplaceTempView(f"{kind}_raw")
    quarantined = keep(spark_session, quarantined, params, f"quarantine_{kind}")
    print(f"{kind}: {rows.count()} rows read, {quarantined.count()} records quarantined")

# COMMAND ----------

for _kind, table, sql in CLEANING:
    df = keep(spark_session, spark_session.sql(sql), params, table)
    df.createOrReplaceTempView(table)
    print(f"{table}: {df.count()} rows")

# COMMAND ----------

for query_id, title, sql in QUERIES:
    df = spark_session.sql(sql)
    show(df, f"{query_id}: {title}")
    keep(spark_session, df, params, query_id)
    # 3b reads 3a: the view is the query itself, which keeps its order.
    df.createOrReplaceTempView(query_id)
    chart(df, query_id, title, params.json_copy)
