"""The batch job (SPEC 4 cleaning, SPEC 5 queries) written for Polars' lazy
API, as a data engineer would write it: a peer `cargo xtask bench batch`
runs next to `pipeline batch`. Written from the contract, not from our SQL.

Reads the S3 sink layout in a directory with `scan_ndjson` and the raw
schema, and writes each result to `<output>/<id>.json`, one JSON object per
row. Lines that are not rows (SPEC 8.6's quarantine) are not handled: the
benchmark input has none.
"""

import argparse
import glob
import json
import os

import polars as pl

from contract_rules import PLACEHOLDERS, RAW_COLUMNS

TYPES = {"int": pl.Int64, "float": pl.Float64, "text": pl.Utf8}
RAW = {kind: {c: TYPES[t] for c, t in columns.items()} for kind, columns in RAW_COLUMNS.items()}


def scan(source, uid, kind):
    files = sorted(glob.glob(os.path.join(source, "topics", f"{uid}.{kind}", "partition=*", "*.json")))
    return pl.scan_ndjson(files, schema=RAW[kind])


def parse_ts(column):
    text = pl.col(column)
    # `YYYY:MM:DD ...` (one emulator's spelling) becomes `YYYY-MM-DD ...`.
    fixed = pl.when(text.str.contains(r"^\d{4}:\d{2}:\d{2}")).then(
        text.str.slice(0, 10).str.replace_all(":", "-") + text.str.slice(10)
    ).otherwise(text)
    fixed = fixed.str.replace("T", " ", literal=True)
    return pl.coalesce(
        fixed.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S%.f", strict=False),
        fixed.str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=False),
    )


def followers(column):
    text = pl.col(column)
    mantissa = text.str.slice(0, text.str.len_chars() - 1).cast(pl.Float64, strict=False)
    return (
        pl.when(text.str.ends_with("k")).then((mantissa * 1000).round(0).cast(pl.Int64, strict=False))
        .when(text.str.ends_with("M")).then((mantissa * 1_000_000).round(0).cast(pl.Int64, strict=False))
        .otherwise(text.cast(pl.Int64, strict=False))
    )


def age_group():
    age = pl.col("age")
    return (
        pl.when(age.is_between(18, 24)).then(pl.lit("18-24"))
        .when(age.is_between(25, 35)).then(pl.lit("25-35"))
        .when(age.is_between(36, 50)).then(pl.lit("36-50"))
        .when(age > 50).then(pl.lit("+50"))
    )


def top(frame, group, item):
    counted = frame.group_by([group, item]).agg(pl.len().cast(pl.Int64).alias("category_count"))
    best = counted.with_columns(pl.col("category_count").max().over(group).alias("best"))
    return best.filter(pl.col("category_count") == pl.col("best")).select(group, item, "category_count").sort([group, item])


def lower_median(frame, keys):
    # The value at position ceil(n/2) of the sorted values.
    v = pl.col("follower_count").sort()
    return (
        frame.group_by(keys)
        .agg(v.gather((pl.len() + 1) // 2 - 1).first().alias("median_follower_count"))
        .sort(keys)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True)
    parser.add_argument("--uid", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()

    pin_text = [c for c, t in RAW["pin"].items() if t == pl.Utf8]
    nulled = [
        pl.when(pl.col(c).is_in([""] + PLACEHOLDERS.get(c, []))).then(None).otherwise(pl.col(c)).alias(c) for c in pin_text
    ]
    pin = (
        scan(args.source, args.uid, "pin")
        .with_columns(nulled)
        .select(
            pl.col("index").alias("ind"), "unique_id", "title", "description",
            followers("follower_count").alias("follower_count"), "poster_name", "tag_list", "is_image_or_video",
            "image_src", pl.col("save_location").str.replace(r"^Local save in ", ""), "category",
        )
        .unique()
    )
    geo = (
        scan(args.source, args.uid, "geo")
        .select("ind", "country", pl.concat_list("latitude", "longitude").alias("coordinates"), parse_ts("timestamp").alias("timestamp"))
        .unique()
    )
    user = (
        scan(args.source, args.uid, "user")
        .select("ind", (pl.col("first_name") + " " + pl.col("last_name")).alias("user_name"), "age", parse_ts("date_joined").alias("date_joined"))
        .unique()
    )
    pin, geo, user = pl.collect_all([pin, geo, user])
    pin, geo, user = pin.lazy(), geo.lazy(), user.lazy()
    pin_geo = pin.join(geo, on="ind")
    pin_user = pin.join(user, on="ind")
    with_followers = pl.col("follower_count").is_not_null()
    adults = pl.col("age") >= 18
    joined_year = pl.col("date_joined").dt.year().cast(pl.Int32).alias("post_year")

    q3a = (
        pin_geo.filter(with_followers)
        .filter(pl.col("follower_count") == pl.col("follower_count").max().over("country"))
        .select("country", "poster_name", "follower_count")
        .unique()
        .sort(["country", "poster_name"])
    )
    queries = {
        "q1": top(pin_geo.select("country", "category"), "country", "category"),
        "q2": top(
            pin_geo.select(pl.col("timestamp").dt.year().cast(pl.Int32).alias("post_year"), "category").filter(
                pl.col("post_year").is_between(2018, 2022)
            ),
            "post_year",
            "category",
        ),
        "q3a": q3a,
        "q3b": q3a.sort(["follower_count", "country"], descending=[True, False]).select("country", "follower_count").head(1),
        "q4": top(pin_user.filter(adults).select(age_group().alias("age_group"), "category"), "age_group", "category"),
        "q5": lower_median(pin_user.filter(adults & with_followers).select(age_group().alias("age_group"), "follower_count"), ["age_group"]),
        "q6": user.select("user_name", "date_joined", joined_year)
        .unique()
        .filter(pl.col("post_year").is_between(2015, 2020))
        .group_by("post_year")
        .agg(pl.len().cast(pl.Int64).alias("number_users_joined"))
        .sort("post_year"),
        "q7": lower_median(
            pin_user.filter(with_followers).select(joined_year, "follower_count").filter(pl.col("post_year").is_between(2015, 2020)),
            ["post_year"],
        ),
        "q8": lower_median(
            pin_user.filter(adults & with_followers)
            .select(age_group().alias("age_group"), joined_year, "follower_count")
            .filter(pl.col("post_year").is_between(2015, 2020)),
            ["age_group", "post_year"],
        ),
    }
    results = pl.collect_all(list(queries.values()))
    os.makedirs(args.output, exist_ok=True)
    for qid, frame in zip(queries, results):
        with open(os.path.join(args.output, f"{qid}.json"), "w", encoding="utf-8") as f:
            for row in frame.iter_rows(named=True):
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
