"""Read Delta tables with the `deltalake` Python package (a second reader,
independent of the Rust writer's code path) and print, per table, its row
count and sorted `ind` values as JSON."""
import json
import sys

from deltalake import DeltaTable

out = {}
for path in sys.argv[1:]:
    table = DeltaTable(path).to_pyarrow_table()
    out[path] = {"rows": table.num_rows, "ind": sorted(table.column("ind").to_pylist()), "version": DeltaTable(path).version()}
print(json.dumps(out))
