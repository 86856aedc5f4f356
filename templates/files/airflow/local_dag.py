"""Daily batch job of the Pinterest pipeline on a local Airflow, deployment {{ uid }}.

Rendered by `cargo xtask render` from templates/files/airflow/local_dag.py.
The original write-up's local orchestration, without Databricks: each day it
runs `pipeline batch` over the sink output and writes the cleaned tables,
the results and the quarantine under a folder of the run's date (the start
of its data interval), so a retry or backfill of a day replaces that day's
folder. With --strict a quarantined record fails the task: look at
quarantine/<kind>.json in that folder. Imports on Airflow 2.10 and 3.x.

Put it in your Airflow's dags folder (~/airflow/dags), or run
`cargo xtask local airflow`, which starts one with it.
"""

from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3 moved the operator to the standard provider.
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:
    from airflow.operators.bash import BashOperator

# The run's folder ("~" is the worker's home) replaces any earlier run of
# the same date.
BATCH = (
    'results="${RESULTS/#\\~/$HOME}/{% raw %}{{ ds }}{% endraw %}" && rm -rf "$results" && '
    '"$PIPELINE" batch --uid {{ uid }} --input "$INPUT" --output "$results" --print none --strict'
)

with DAG(
    dag_id="{{ uid }}_local_dag",
    description="Pinterest pipeline batch job on the local stack: pipeline batch for the run's date",
    start_date=datetime({{ airflow.start_year }}, {{ airflow.start_month }}, {{ airflow.start_day }}),
    schedule="@daily",
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,
    default_args={
        "owner": "{{ airflow.owner }}",
        "retries": {{ airflow.retries }},
        "retry_delay": timedelta(minutes=2),
        "execution_timeout": timedelta(minutes={{ local_airflow.timeout_minutes }}),
    },
    tags=["pinterest-pipeline", "{{ uid }}", "local"],
) as dag:
    BashOperator(
        task_id="pipeline_batch",
        bash_command=BATCH,
        env={
            "PIPELINE": "{{ local_airflow.pipeline_bin }}",
            "INPUT": "{{ local_airflow.input }}",
            "RESULTS": "{{ local_airflow.results_dir }}",
{%- if local_airflow.aws_endpoint_url %}
            "AWS_ENDPOINT_URL": "{{ local_airflow.aws_endpoint_url }}",
{%- endif %}
        },
        # Keep PATH, HOME and AWS credentials of the worker's environment.
        append_env=True,
    )
