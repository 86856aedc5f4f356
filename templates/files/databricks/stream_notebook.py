{% import "databricks/sql.macros" as sql -%}
# Databricks notebook source
# Pinterest pipeline, stream job for deployment {{ uid }} (SPEC section 7).
#
# Rendered by `cargo xtask render` from templates/files/databricks/stream_notebook.py.
# Reads the Kinesis streams streaming-{{ uid }}-pin|geo|user from the earliest
# position, parses each record with the raw schema, cleans every micro-batch
# with the same SQL as the batch job (templates/sql/) and appends it to the
# Delta tables {{ uid }}_pin_table, {{ uid }}_geo_table and {{ uid }}_user_table.
# The streaming checkpoint makes a restart neither lose nor repeat records.

# COMMAND ----------

from pyspark.sql.functions import array, col, explode, from_json, trim, when

UID = "{{ uid }}"
REGION = "{{ region }}"
CHECKPOINTS = "{{ databricks.checkpoint_location }}"

{{ sql::raw_schemas() }}

{{ sql::cleaning() }}

# COMMAND ----------


def raw_records(data, kind):
    """The records of one Kinesis record's data: an object is one, an array
    of objects one per element, as in the batch job (SPEC 8.6)."""
    schema = RAW_SCHEMAS[kind]
    return explode(
        when(trim(data).startswith("["), from_json(data, f"ARRAY<STRUCT<{schema}>>")).otherwise(array(from_json(data, schema)))
    )


def append_cleaned(kind, cleaning_sql, table):
    def write(batch_df, batch_id):
        # The cleaning SQL reads the view <kind>_raw; a micro-batch is a
        # static DataFrame, so the batch SQL applies unchanged.
        batch_df.createOrReplaceTempView(f"{kind}_raw")
        cleaned = batch_df.sparkSession.sql(cleaning_sql)
        cleaned.write.format("delta").mode("append").saveAsTable(table)

    return write


spark.conf.set("spark.sql.ansi.enabled", "false")  # noqa: F821 - defined by Databricks
spark.conf.set("spark.sql.session.timeZone", "UTC")  # noqa: F821

queries = []
for kind, _cleaned, cleaning_sql in CLEANING:
    records = (
        spark.readStream.format("kinesis")  # noqa: F821
        .option("streamName", f"streaming-{UID}-{kind}")
        .option("region", REGION)
        .option("initialPosition", "earliest")
        .load()
        .select(raw_records(col("data").cast("string"), kind).alias("record"))
        .select("record.*")
        .where(col(RAW_KEYS[kind]).isNotNull())
    )
    queries.append(
        records.writeStream.foreachBatch(append_cleaned(kind, cleaning_sql, f"{UID}_{kind}_table"))
        .option("checkpointLocation", f"{CHECKPOINTS.rstrip('/')}/{kind}")
        .queryName(f"{UID}_{kind}_stream")
        .start()
    )
