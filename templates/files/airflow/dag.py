"""Daily batch job of the Pinterest pipeline, deployment {{ uid }}.

Rendered by `cargo xtask render` from templates/files/airflow/dag.py and
uploaded by `cargo xtask deploy-dag` to s3://{{ airflow.dags_bucket }}/dags/{{ uid }}_dag.py.
It submits the batch notebook (the same SQL as `pipeline batch`) to Databricks
as a one-time run on {% if databricks.compute == "existing_cluster" %}the all-purpose cluster {{ databricks.cluster_id }}{% elif databricks.compute == "serverless" %}serverless compute{% else %}a new job cluster{% endif %}, passing the run's date (the
start of its data interval), so that a retry or a backfill of a day replaces
that day's results. Written to import on Airflow 2.10 (MWAA) and 3.x.

The Databricks connection `databricks_default` comes from the Secrets
Manager backend `provision` configures on MWAA: the secret
{{ airflow.connections_prefix }}/databricks_default (see the README,
"Databricks prerequisites").
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator

TIMEOUT = timedelta(minutes={{ databricks.timeout_minutes }})

default_args = {
    "owner": "{{ airflow.owner }}",
    "depends_on_past": False,
    "retries": {{ airflow.retries }},
    "retry_delay": timedelta(minutes=2),
}

with DAG(
    dag_id="{{ uid }}_dag",
    description="Pinterest pipeline batch job: clean the sink output and run the analysis queries",
    start_date=datetime({{ airflow.start_year }}, {{ airflow.start_month }}, {{ airflow.start_day }}),
    schedule="@daily",
    catchup=False,
    # Runs of two days would write the same tables at once.
    max_active_runs=1,
    dagrun_timeout=TIMEOUT + timedelta(minutes=30),
    is_paused_upon_creation=True,
    default_args=default_args,
    tags=["pinterest-pipeline", "{{ uid }}"],
) as dag:
    DatabricksSubmitRunOperator(
        task_id="run_batch_notebook",
        databricks_conn_id="databricks_default",
        run_name="pinterest-batch-{{ uid }}",
{%- if databricks.compute == "existing_cluster" %}
        existing_cluster_id="{{ databricks.cluster_id }}",
{%- elif databricks.compute == "job_cluster" %}
        new_cluster={
            "spark_version": "{{ databricks.spark_version }}",
            "node_type_id": "{{ databricks.node_type_id }}",
            "num_workers": {{ databricks.num_workers }},
{%- if databricks.instance_profile_arn %}
            "aws_attributes": {"instance_profile_arn": "{{ databricks.instance_profile_arn }}"},
{%- endif %}
        },
{%- endif %}
        notebook_task={
            "notebook_path": "{{ databricks.notebook_path }}",
            "source": "WORKSPACE",
            "base_parameters": {
                "source": "{{ databricks.source }}",
                "output": "{{ databricks.output }}",
                "run_date": "{% raw %}{{ ds }}{% endraw %}",
            },
        },
        timeout_seconds=int(TIMEOUT.total_seconds()),
        execution_timeout=TIMEOUT,
    )
