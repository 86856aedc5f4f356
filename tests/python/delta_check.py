"""Read Delta tables with the `deltalake` Python package (a second reader,
independent of the Rust writer's code path) and print, per table, its row
count and sorted `ind` values as JSON. Tables are directories or s3:// URIs
(endpoint from AWS_ENDPOINT_URL, e.g. moto)."""
import json
import os
import sys

from deltalake import DeltaTable


def storage_options(path):
    if not path.startswith("s3://"):
        return None
    options = {"AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
               "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
               "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing")}
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["AWS_ENDPOINT_URL"] = endpoint
        options["AWS_ALLOW_HTTP"] = "true"
    return options


out = {}
for path in sys.argv[1:]:
    delta = DeltaTable(path, storage_options=storage_options(path))
    table = delta.to_pyarrow_table()
    out[path] = {"rows": table.num_rows, "ind": sorted(table.column("ind").to_pylist()), "version": delta.version()}
print(json.dumps(out), flush=True)
# deltalake 1.6 can abort at interpreter shutdown ("terminate called without
# an active exception", exit 134) once an S3 or file table was read: its
# runtime threads outlive Python's teardown. Everything is printed; skip it.
os._exit(0)
