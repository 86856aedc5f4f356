"""Checks that every engine of `cargo xtask bench batch` gave the same nine
results: `pipeline batch --output` (Parquet under results/) against each
peer's `<id>.json` (one JSON object per row). Prints one line per engine and
exits non-zero on the first difference, naming the query and a row."""

import argparse
import json
import os
import sys

import duckdb

QUERIES = ["q1", "q2", "q3a", "q3b", "q4", "q5", "q6", "q7", "q8"]


def ours(results_dir, qid):
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{os.path.join(results_dir, qid + '.parquet')}')")
    return rel.columns, [tuple(r) for r in rel.fetchall()]


def peer(out_dir, qid):
    with open(os.path.join(out_dir, qid + ".json"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    columns = list(rows[0]) if rows else None
    return columns, [tuple(r.values()) for r in rows]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", required=True, help="pipeline batch's --output directory")
    parser.add_argument("peers", nargs="+", help="name=directory of a peer's results")
    args = parser.parse_args()
    expected = {q: ours(os.path.join(args.ours, "results"), q) for q in QUERIES}
    failed = False
    for spec in args.peers:
        name, _, out_dir = spec.partition("=")
        for q in QUERIES:
            columns, rows = peer(out_dir, q)
            want_columns, want_rows = expected[q]
            if columns is not None and list(columns) != list(want_columns):
                print(f"{name}: {q} has columns {columns}, ours {want_columns}")
                failed = True
                break
            if sorted(map(repr, rows)) != sorted(map(repr, want_rows)):
                extra = sorted(set(rows) - set(want_rows), key=repr)[:3]
                missing = sorted(set(want_rows) - set(rows), key=repr)[:3]
                print(f"{name}: {q} differs ({len(rows)} rows, ours {len(want_rows)}); only {name}: {extra}; only ours: {missing}")
                failed = True
                break
        else:
            print(f"{name}: the nine results equal ours ({sum(len(r) for _, r in expected.values())} rows)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
