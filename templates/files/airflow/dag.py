"""Daily batch job of the Pinterest pipeline, deployment {{ uid }}.

Rendered by `cargo xtask render` from templates/files/airflow/dag.py and
uploaded by `cargo xtask deploy-dag` to s3://{{ airflow.dags_bucket }}/dags/{{ uid }}_dag.py.
It submits the batch notebook (the same SQL as `pipeline batch`) to an
existing Databricks cluster. Written to import on Airflow 2.10 (MWAA) and 3.x.
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.providers.databricks.operators.databricks import DatabricksSubmitRunOperator

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
    is_paused_upon_creation=True,
    default_args=default_args,
    tags=["pinterest-pipeline", "{{ uid }}"],
) as dag:
    DatabricksSubmitRunOperator(
        task_id="run_batch_notebook",
        databricks_conn_id="databricks_default",
        existing_cluster_id="{{ databricks.cluster_id }}",
        notebook_task={
            "notebook_path": "{{ databricks.notebook_path }}",
            "base_parameters": {"source": "{{ databricks.source }}"},
        },
    )
