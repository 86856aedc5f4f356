{% import "databricks/sql.macros" as sql -%}
# Databricks notebook source
# Pinterest pipeline, batch job for deployment {{ uid }}.
#
# Rendered by `cargo xtask render` from templates/files/databricks/batch_notebook.py.
# The cleaning and the queries below are the SQL files of templates/sql/, the
# same ones `pipeline batch` runs on DataFusion; edit those, not this file.
#
# On Databricks the parameters are widgets. The same file also runs on a local
# PySpark (`python batch_notebook.py --source DIR --output DIR`), which is how
# the project's tests check it against `pipeline batch`.

# COMMAND ----------

import argparse
import json
import os

from pyspark.sql import SparkSession
from pyspark.sql.functions import coalesce, col, input_file_name, lit, struct, to_json, when
from pyspark.sql.types import NumericType

UID = "{{ uid }}"
DEFAULT_SOURCE = "{{ databricks.source }}"

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


def parameters():
    """Widgets on Databricks, command-line flags elsewhere."""
    try:
        widgets = dbutils.widgets  # noqa: F821 - defined by Databricks
    except NameError:
        parser = argparse.ArgumentParser(description="Pinterest pipeline batch job ({{ uid }})")
        parser.add_argument("--source", default=DEFAULT_SOURCE, help="where the S3 sink wrote topics/<topic>/...")
        parser.add_argument("--output", help="directory for JSON copies of every table (optional)")
        args = parser.parse_args()
        return args.source, args.output
    widgets.text("source", DEFAULT_SOURCE)
    widgets.text("output", "")
    return widgets.get("source"), widgets.get("output") or None


def session():
    try:
        return spark  # noqa: F821 - defined by Databricks
    except NameError:
        return (
            SparkSession.builder.master(os.environ.get("SPARK_MASTER", "local[2]"))
            .appName("pinterest-batch-{{ uid }}")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )


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
    kind. Both go to the quarantine instead of failing or vanishing.
    """
    key = RAW_KEYS[kind]
    records = (
        spark_session.read.schema(RAW_SCHEMAS[kind] + ", _corrupt_record STRING")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .json(path)
        .withColumn("_object", input_file_name())
        .cache()
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


def save(df, output, name):
    # One JSON object per line, nulls kept, so that another engine's output
    # can be compared row by row.
    if not output:
        return
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, f"{name}.json"), "w", encoding="utf-8") as f:
        for row in df.toJSON().collect():
            f.write(row + "\n")


# COMMAND ----------

source, output = parameters()
spark_session = session()
# The SQL is written for non-ANSI semantics (TRY_CAST, NULL on bad input) and
# UTC timestamps, like DataFusion.
spark_session.conf.set("spark.sql.ansi.enabled", "false")
spark_session.conf.set("spark.sql.session.timeZone", "UTC")
spark_session.conf.set("spark.sql.jsonGenerator.ignoreNullFields", "false")

for kind in ("pin", "geo", "user"):
    path = f"{source.rstrip('/')}/topics/{UID}.{kind}/partition=*/*.json"
    rows, quarantined = read_raw(spark_session, kind, path)
    rows.createOrReplaceTempView(f"{kind}_raw")
    save(quarantined, output, f"quarantine_{kind}")
    print(f"{kind}: {rows.count()} rows read, {quarantined.count()} records quarantined")

# COMMAND ----------

for _kind, table, sql in CLEANING:
    df = spark_session.sql(sql).cache()
    df.createOrReplaceTempView(table)
    save(df, output, table)
    print(f"{table}: {df.count()} rows")

# COMMAND ----------

for query_id, title, sql in QUERIES:
    df = spark_session.sql(sql)
    df.createOrReplaceTempView(query_id)
    show(df, f"{query_id}: {title}")
    save(df, output, query_id)
    chart(df, query_id, title, output)
