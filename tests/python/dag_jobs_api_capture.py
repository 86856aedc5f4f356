"""Run a DAG file's DAG once with dag.test(), its Databricks connection
pointed at a local HTTP server on 127.0.0.1 that records each request of
the provider's and answers as the Jobs API does for a run that succeeds.
Writes the recorded requests as JSON: [{"method", "path", "body"}, ...].

Usage: dag_jobs_api_capture.py DAG_FOLDER DAG_ID RUN_DATE OUT_JSON
(the metadata database must exist: `airflow db migrate`)."""
import datetime
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

dag_folder, dag_id, run_date, out_path = sys.argv[1:5]
requests = []
RUN_ID = 4242


class JobsApi(BaseHTTPRequestHandler):
    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlparse(self.path)
        requests.append({"method": self.command, "path": url.path, "query": url.query, "body": json.loads(raw) if raw else None})
        return url.path

    def do_POST(self):
        path = self.record()
        self.answer({"run_id": RUN_ID} if path.endswith("/jobs/runs/submit") else {})

    def do_GET(self):
        path = self.record()
        if path.endswith("/jobs/runs/get"):
            self.answer(
                {
                    "run_id": RUN_ID,
                    "run_page_url": f"http://127.0.0.1/#job/run/{RUN_ID}",
                    "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""},
                    "status": {"state": "TERMINATED", "termination_details": {"code": "SUCCESS", "type": "SUCCESS"}},
                    "tasks": [],
                }
            )
        else:
            self.answer({})

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), JobsApi)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ["AIRFLOW_CONN_DATABRICKS_DEFAULT"] = json.dumps(
    {"conn_type": "databricks", "host": "127.0.0.1", "port": server.server_address[1], "schema": "http", "password": "dapi-test-token"}
)

try:
    from airflow.dag_processing.dagbag import DagBag  # Airflow 3.1+
except ImportError:
    from airflow.models.dagbag import DagBag

bag = DagBag(dag_folder=dag_folder, include_examples=False) if "include_examples" in DagBag.__init__.__code__.co_varnames else DagBag(dag_folder=dag_folder)
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag(dag_id)
# The provider polls the run's state; no need to wait between polls here.
for task in dag.tasks:
    if hasattr(task, "polling_period_seconds"):
        task.polling_period_seconds = 0
when = datetime.datetime.fromisoformat(run_date).replace(tzinfo=datetime.timezone.utc)
try:
    run = dag.test(logical_date=when)
except TypeError:  # Airflow 2
    run = dag.test(execution_date=when)
server.shutdown()
with open(out_path, "w", encoding="utf-8") as out:
    json.dump({"state": str(getattr(run, "state", None)), "requests": requests}, out)
