{% import "databricks/sql.macros" as sql -%}
# Databricks notebook source
# Pinterest pipeline, stream job for deployment {{ uid }} (SPEC section 7).
#
# Rendered by `cargo xtask render` from templates/files/databricks/stream_notebook.py.
# Reads the Kinesis streams streaming-{{ uid }}-pin|geo|user from the earliest
# position, parses each record with the raw schema, cleans every micro-batch
# with the same SQL as the batch job (templates/sql/) and appends it to the
# Delta table <uid>_<kind>_table of the `tables` namespace (`-` in the uid
# written `_`). Records that are not rows (not JSON, no key column) go to
# <uid>_<kind>_dead_letters there, not away.
#
# Exactly once: the checkpoint keeps the stream's position, and each
# micro-batch is written with Delta's idempotent-write options (txnAppId,
# txnVersion = the batch id), so a batch replayed after a failure between its
# write and its checkpoint commit writes nothing twice.

# COMMAND ----------

from pyspark.sql.functions import array, col, explode_outer, from_json, lit, trim, when

UID = "{{ uid }}"
REGION = "{{ region }}"
DEFAULT_CHECKPOINTS = "{{ databricks.checkpoint_location }}"
DEFAULT_TABLES = "{{ databricks.output }}"

{{ sql::raw_schemas() }}

{{ sql::cleaning() }}

# COMMAND ----------


def quoted(*parts):
    """A table name of any parts (catalog.schema.table), each quoted: a uid
    may hold `-`."""
    return ".".join("`" + p.strip("`").replace("`", "``") + "`" for p in parts)


def table_name(namespace, kind, what="table"):
    # Hive's metastore refuses `-` in table names even quoted (Unity Catalog
    # takes it quoted): `_` works in both.
    return quoted(*namespace.split("."), f"{UID.replace('-', '_')}_{kind}_{what}")


def raw_records(data, kind):
    """The records of one Kinesis record's data: an object is one, an array
    of objects one per element, as in the batch job (SPEC 8.6). An object
    that is not JSON keeps its text in _corrupt_record, as the batch job's
    reader does; an array that does not parse gives one null record
    (explode_outer). Both become dead letters."""
    schema = RAW_SCHEMAS[kind]
    one = from_json(data, f"{schema}, _corrupt_record STRING", {"columnNameOfCorruptRecord": "_corrupt_record"})
    return explode_outer(when(trim(data).startswith("["), from_json(data, f"ARRAY<STRUCT<{schema}, _corrupt_record STRING>>")).otherwise(array(one)))


def write_batch(kind, cleaning_sql, namespace):
    """The foreachBatch function of a kind: `batch_df` holds the Kinesis
    records' `data` as text. Rows are cleaned and appended; records that
    are not rows go to the dead letters. Both writes carry the batch id, so
    Delta skips a batch it has already written."""
    app_id = f"pinterest-{UID}-{kind}"
    key = RAW_KEYS[kind]

    def write(batch_df, batch_id):
        spark_session = batch_df.sparkSession
        parsed = batch_df.select(col("data"), raw_records(col("data"), kind).alias("record"))
        not_json = col("record").isNull() | col("record._corrupt_record").isNotNull()
        rows = parsed.where(~not_json & col(f"record.{key}").isNotNull()).select("record.*").drop("_corrupt_record")
        dead = parsed.where(not_json | col(f"record.{key}").isNull()).select(
            col("data").alias("raw"),
            when(not_json, lit("not JSON, or not an object or array of objects"))
            .otherwise(lit(f"no `{key}` field: not a {kind} row"))
            .alias("reason"),
            lit(batch_id).alias("batch_id"),
        )
        # The cleaning SQL reads the view <kind>_raw; a micro-batch is a
        # static DataFrame, so the batch SQL applies unchanged.
        rows.createOrReplaceTempView(f"{kind}_raw")
        cleaned = spark_session.sql(cleaning_sql)
        for df, table in ((cleaned, table_name(namespace, kind)), (dead, table_name(namespace, kind, "dead_letters"))):
            df.write.format("delta").mode("append").option("txnAppId", f"{app_id}-{table}").option("txnVersion", batch_id).saveAsTable(table)

    return write


def parameters():
    widgets = dbutils.widgets  # noqa: F821 - defined by Databricks
    widgets.text("tables", DEFAULT_TABLES)
    widgets.text("checkpoints", DEFAULT_CHECKPOINTS)
    # "available_now" reads what the streams hold and stops (a scheduled
    # job); a duration ("30 seconds") keeps running, a micro-batch each.
    widgets.text("trigger", "available_now")
    # How the Kinesis source signs in: a Unity Catalog service credential
    # (standard and serverless compute), else a role to assume, else the
    # cluster's instance profile (classic compute only).
    widgets.text("service_credential", "")
    widgets.text("role_arn", "")
    return {name: widgets.get(name) for name in ("tables", "checkpoints", "trigger", "service_credential", "role_arn")}


def start(spark_session, params):
    spark_session.conf.set("spark.sql.ansi.enabled", "false")
    spark_session.conf.set("spark.sql.session.timeZone", "UTC")
    spark_session.sql(f"CREATE SCHEMA IF NOT EXISTS {quoted(*params['tables'].split('.'))}")
    queries = []
    for kind, _cleaned, cleaning_sql in CLEANING:
        reader = (
            spark_session.readStream.format("kinesis")
            .option("streamName", f"streaming-{UID}-{kind}")
            .option("region", REGION)
            .option("initialPosition", "earliest")
        )
        if params["service_credential"]:
            reader = reader.option("serviceCredential", params["service_credential"])
        elif params["role_arn"]:
            reader = reader.option("roleArn", params["role_arn"])
        writer = (
            reader.load()
            .select(col("data").cast("string").alias("data"))
            .writeStream.foreachBatch(write_batch(kind, cleaning_sql, params["tables"]))
            .option("checkpointLocation", f"{params['checkpoints'].rstrip('/')}/{kind}")
            .queryName(f"{UID}_{kind}_stream")
        )
        if params["trigger"] == "available_now":
            writer = writer.trigger(availableNow=True)
        else:
            writer = writer.trigger(processingTime=params["trigger"])
        queries.append(writer.start())
    return queries


# COMMAND ----------

# Imported by the project's tests for write_batch, run as a notebook here.
if __name__ == "__main__":
    streams = start(spark, parameters())  # noqa: F821 - defined by Databricks
