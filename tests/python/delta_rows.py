"""Print every row of the given Delta tables (directories) as JSON, read with
the `deltalake` package: a reader independent of Spark's writer. Output:
{path: {"version": n, "rows": [{column: value}, ...]}}, timestamps as
zone-less ISO text (the tables hold UTC), dates as YYYY-MM-DD."""
import datetime
import json
import os
import sys

from deltalake import DeltaTable


def plain(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise TypeError(f"no JSON for {type(value).__name__}")


out = {}
for path in sys.argv[1:]:
    delta = DeltaTable(path)
    out[path] = {"version": delta.version(), "rows": delta.to_pyarrow_table().to_pylist()}
print(json.dumps(out, default=plain), flush=True)
# deltalake 1.6 can abort at interpreter shutdown once a table was read (see
# delta_check.py); everything is printed, so skip the teardown.
os._exit(0)
