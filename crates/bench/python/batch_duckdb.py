"""The batch job (SPEC 4 cleaning, SPEC 5 queries) written for DuckDB, as a
data engineer would write it: the peer `cargo xtask bench batch` runs next
to `pipeline batch`. Written from the contract, not from our SQL templates.

It reads the S3 sink layout in a directory (`topics/<uid>.<kind>/partition=*/`)
as newline-delimited JSON with the raw schema, and writes each result to
`<output>/<id>.json`, one JSON object per row. Lines that are not rows (SPEC
8.6's quarantine) are not handled: the benchmark input has none.
"""

import argparse
import json
import os

import duckdb

from contract_rules import PLACEHOLDERS, RAW_COLUMNS

TYPES = {"int": "BIGINT", "float": "DOUBLE", "text": "VARCHAR"}
RAW = {kind: {c: TYPES[t] for c, t in columns.items()} for kind, columns in RAW_COLUMNS.items()}


def quoted(s):
    return "'" + s.replace("'", "''") + "'"


def nulled(column):
    values = ", ".join(quoted(v) for v in [""] + PLACEHOLDERS.get(column, []))
    return f'CASE WHEN "{column}" IN ({values}) THEN NULL ELSE "{column}" END'


def timestamp(expr):
    # `YYYY:MM:DD ...` (one emulator's spelling) becomes `YYYY-MM-DD ...`;
    # what does not parse is null.
    fixed = f"CASE WHEN {expr} SIMILAR TO '\\d{{4}}:\\d{{2}}:\\d{{2}}.*' THEN replace({expr}[1:10], ':', '-') || {expr}[11:] ELSE {expr} END"
    return f"TRY_CAST({fixed} AS TIMESTAMP)"


def followers(expr):
    number = f"TRY_CAST({expr}[1:-2] AS DOUBLE)"
    return (
        f"CASE WHEN {expr} LIKE '%k' THEN CAST(round({number} * 1000) AS BIGINT) "
        f"WHEN {expr} LIKE '%M' THEN CAST(round({number} * 1000000) AS BIGINT) "
        f"ELSE TRY_CAST({expr} AS BIGINT) END"
    )


AGE_GROUP = """CASE WHEN u.age BETWEEN 18 AND 24 THEN '18-24' WHEN u.age BETWEEN 25 AND 35 THEN '25-35'
               WHEN u.age BETWEEN 36 AND 50 THEN '36-50' WHEN u.age > 50 THEN '+50' END"""


def top(group, item, base):
    return f"""
    WITH base AS ({base}), counted AS (
      SELECT {group}, {item}, count(*) AS category_count FROM base GROUP BY ALL
    )
    SELECT {group}, {item}, category_count FROM counted
    QUALIFY rank() OVER (PARTITION BY {group} ORDER BY category_count DESC) = 1
    ORDER BY {group}, {item}"""


def lower_median(keys, base):
    # The lower median: the value at position ceil(n/2) of the sorted
    # values, which is what quantile_disc gives for 0.5.
    return f"""
    WITH base AS ({base})
    SELECT {keys}, quantile_disc(follower_count, 0.5) AS median_follower_count
    FROM base GROUP BY {keys} ORDER BY {keys}"""


QUERIES = {
    "q1": top("country", "category", "SELECT g.country, p.category FROM pin_clean p JOIN geo_clean g USING (ind)"),
    "q2": top(
        "post_year",
        "category",
        """SELECT CAST(year(g.timestamp) AS INT) AS post_year, p.category FROM pin_clean p JOIN geo_clean g USING (ind)
           WHERE year(g.timestamp) BETWEEN 2018 AND 2022""",
    ),
    "q3a": """
      SELECT DISTINCT g.country, p.poster_name, p.follower_count FROM pin_clean p JOIN geo_clean g USING (ind)
      WHERE p.follower_count IS NOT NULL
      QUALIFY rank() OVER (PARTITION BY g.country ORDER BY p.follower_count DESC) = 1
      ORDER BY g.country, p.poster_name""",
    "q3b": "SELECT country, follower_count FROM q3a ORDER BY follower_count DESC, country LIMIT 1",
    "q4": top(
        "age_group", "category", f"SELECT {AGE_GROUP} AS age_group, p.category FROM pin_clean p JOIN user_clean u USING (ind) WHERE u.age >= 18"
    ),
    "q5": lower_median(
        "age_group",
        f"""SELECT {AGE_GROUP} AS age_group, p.follower_count FROM pin_clean p JOIN user_clean u USING (ind)
            WHERE u.age >= 18 AND p.follower_count IS NOT NULL""",
    ),
    "q6": """
      SELECT post_year, count(*) AS number_users_joined FROM (
        SELECT DISTINCT user_name, date_joined, CAST(year(date_joined) AS INT) AS post_year FROM user_clean
      ) WHERE post_year BETWEEN 2015 AND 2020 GROUP BY post_year ORDER BY post_year""",
    "q7": lower_median(
        "post_year",
        """SELECT CAST(year(u.date_joined) AS INT) AS post_year, p.follower_count FROM pin_clean p JOIN user_clean u USING (ind)
           WHERE p.follower_count IS NOT NULL AND year(u.date_joined) BETWEEN 2015 AND 2020""",
    ),
    "q8": lower_median(
        "age_group, post_year",
        f"""SELECT {AGE_GROUP} AS age_group, CAST(year(u.date_joined) AS INT) AS post_year, p.follower_count
            FROM pin_clean p JOIN user_clean u USING (ind)
            WHERE u.age >= 18 AND p.follower_count IS NOT NULL AND year(u.date_joined) BETWEEN 2015 AND 2020""",
    ),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="directory holding topics/<uid>.<kind>/partition=*/")
    parser.add_argument("--uid", required=True)
    parser.add_argument("--output", required=True, help="directory for <id>.json results")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    for kind, columns in RAW.items():
        pattern = os.path.join(args.source, "topics", f"{args.uid}.{kind}", "partition=*", "*.json")
        spec = "{" + ", ".join(f"{quoted(c)}: {quoted(t)}" for c, t in columns.items()) + "}"
        con.execute(
            f"CREATE VIEW {kind}_raw AS SELECT * FROM read_json({quoted(pattern)}, format = 'newline_delimited', columns = {spec})"
        )
    pin_text = [c for c, t in RAW["pin"].items() if t == "VARCHAR"]
    nulled_cols = ", ".join(f"{nulled(c)} AS {c}" for c in pin_text)
    con.execute(f"""
      CREATE TABLE pin_clean AS
      WITH n AS (SELECT "index" AS ind, {nulled_cols} FROM pin_raw)
      SELECT DISTINCT ind, unique_id, title, description, {followers("follower_count")} AS follower_count, poster_name,
             tag_list, is_image_or_video, image_src, regexp_replace(save_location, '^Local save in ', '') AS save_location, category
      FROM n""")
    con.execute(f"""
      CREATE TABLE geo_clean AS
      SELECT DISTINCT ind, country, [latitude, longitude] AS coordinates, {timestamp('"timestamp"')} AS "timestamp" FROM geo_raw""")
    con.execute(f"""
      CREATE TABLE user_clean AS
      SELECT DISTINCT ind, first_name || ' ' || last_name AS user_name, age, {timestamp("date_joined")} AS date_joined FROM user_raw""")
    os.makedirs(args.output, exist_ok=True)
    for qid, sql in QUERIES.items():
        rel = con.sql(sql)
        names = rel.columns
        rows = rel.fetchall()
        if qid == "q3a":
            con.execute(f"CREATE TABLE q3a AS {sql}")
        with open(os.path.join(args.output, f"{qid}.json"), "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(dict(zip(names, row))) + "\n")


if __name__ == "__main__":
    main()
