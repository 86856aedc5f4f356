"""Load a folder of DAG files with Airflow's own DagBag and write, as JSON,
the import errors and the settings of every DAG and task that the project's
tests assert on. Works on Airflow 2.10 and 3.x.

Usage: dagbag_check.py DAG_FOLDER OUT_JSON (a file, because Airflow logs to
stdout)."""

import json
import sys

try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
except ImportError:
    from airflow.models.dagbag import DagBag

try:
    bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
except TypeError:  # Airflow 3 dropped the argument along with the examples
    bag = DagBag(dag_folder=sys.argv[1])


def task_info(task):
    return {
        "task_id": task.task_id,
        "operator": type(task).__name__,
        "owner": task.owner,
        "retries": task.retries,
        "retry_delay_seconds": task.retry_delay.total_seconds(),
        "databricks_conn_id": getattr(task, "databricks_conn_id", None),
        "execution_timeout_seconds": task.execution_timeout.total_seconds() if task.execution_timeout else None,
        "existing_cluster_id": getattr(task, "existing_cluster_id", None),
        "new_cluster": getattr(task, "new_cluster", None),
        "timeout_seconds": getattr(task, "timeout_seconds", None),
        "run_name": getattr(task, "run_name", None),
        "notebook_task": getattr(task, "notebook_task", None),
        "json": getattr(task, "json", None),
    }


schedule = lambda dag: getattr(dag, "schedule", None) or getattr(dag, "schedule_interval", None)
with open(sys.argv[2], "w", encoding="utf-8") as out:
    json.dump(
        {
            "import_errors": {path: str(err) for path, err in bag.import_errors.items()},
            "dags": {
                dag_id: {
                    "schedule": str(schedule(dag)),
                    "catchup": dag.catchup,
                    "is_paused_upon_creation": dag.is_paused_upon_creation,
                    "max_active_runs": dag.max_active_runs,
                    "dagrun_timeout_seconds": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
                    "start_date": dag.start_date.isoformat() if dag.start_date else None,
                    "tasks": [task_info(t) for t in dag.tasks],
                }
                for dag_id, dag in bag.dags.items()
            },
        },
        out,
        default=str,
    )
