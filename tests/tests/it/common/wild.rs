//! Input as it arrives in the wild: the ways public versions of the
//! original emulator put records on the wire, and records that are not rows
//! at all. Built here from the synthetic rows, so every test knows what the
//! cleaned tables must be.

use contract::{Kind, Round};
use datafusion::arrow::json::{WriterBuilder, writer::LineDelimited};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Value, json};

/// How one emulator variant sends a record (the REST Proxy `value`, or the
/// Kinesis `Data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The original: the row, datetimes as `YYYY-MM-DD HH:MM:SS`.
    Original,
    /// `{"value": [row]}`: a one-element array.
    OneElementArray,
    /// Datetimes as `YYYY:MM:DD HH:MM:SS`.
    ColonDates,
    /// Datetimes as ISO `YYYY-MM-DDTHH:MM:SS`.
    IsoT,
    /// Datetimes with fractional seconds (`str()` of a datetime with
    /// microseconds).
    Fractional,
}

pub const VARIANTS: [Variant; 5] = [Variant::Original, Variant::OneElementArray, Variant::ColonDates, Variant::IsoT, Variant::Fractional];

fn datetime_column(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Pin => None,
        Kind::Geo => Some("timestamp"),
        Kind::User => Some("date_joined"),
    }
}

fn respell(row: &mut Value, kind: Kind, f: impl Fn(&str) -> String) {
    if let Some(c) = datetime_column(kind) {
        let s = row[c].as_str().expect("datetimes are text").to_string();
        row[c] = Value::String(f(&s));
    }
}

impl Variant {
    /// What this variant sends for one record.
    pub fn encode(self, kind: Kind, round: &Round) -> Value {
        let mut row = round.value(kind);
        match self {
            Variant::Original => row,
            Variant::OneElementArray => json!([row]),
            Variant::ColonDates => {
                respell(&mut row, kind, |s| s[..10].replace('-', ":") + &s[10..]);
                row
            }
            Variant::IsoT => {
                respell(&mut row, kind, |s| s.replacen(' ', "T", 1));
                row
            }
            Variant::Fractional => {
                respell(&mut row, kind, |s| format!("{s}.250000"));
                row
            }
        }
    }

    /// The same record in the original's spelling (fractions kept): what
    /// the cleaned tables must equal.
    pub fn canonical(self, kind: Kind, round: &Round) -> Value {
        let mut row = round.value(kind);
        if self == Variant::Fractional {
            respell(&mut row, kind, |s| format!("{s}.250000"));
        }
        row
    }
}

/// Records that are not rows of the kind, with how many records each
/// counts as in the quarantine. Every one is valid JSON, so it passes the
/// ingest server and the sink, as it does through Confluent's.
pub fn bad_records(kind: Kind, round: &Round) -> Vec<(Value, u64)> {
    let row = round.value(kind);
    let key = kind.key_column();
    let mut wrong_type = row.clone();
    wrong_type[key] = json!("seven");
    let mut keyless = row.clone();
    keyless.as_object_mut().unwrap().remove(key);
    vec![
        (json!("a string, not a row"), 1),
        (json!({"unrelated": true}), 1),
        (wrong_type.clone(), 1),
        (keyless, 1),
        (json!([row.clone(), 42]), 1),
        // One bad record refuses its line: both records are counted.
        (json!([row, wrong_type]), 2),
    ]
}

pub fn bad_record_count(kind: Kind, round: &Round) -> u64 {
    bad_records(kind, round).iter().map(|(_, n)| n).sum()
}

/// The cleaned tables and query results the rounds must give, computed
/// from their canonical spelling with the batch job's own SQL.
pub async fn expected_tables(variant: Variant, rounds: &[Round]) -> (Vec<pipeline_batch::Table>, Vec<pipeline_batch::Table>) {
    let ctx = datafusion::prelude::SessionContext::new();
    for kind in Kind::ALL {
        let rows: Vec<Value> = rounds.iter().map(|r| variant.canonical(kind, r)).collect();
        let schema = std::sync::Arc::new(pipeline_batch::raw_schema(kind));
        let mut decoder = datafusion::arrow::json::ReaderBuilder::new(schema).build_decoder().unwrap();
        decoder.serialize(&rows).unwrap();
        pipeline_batch::register_raw_batches(&ctx, kind, decoder.flush().unwrap().into_iter().collect()).unwrap();
    }
    pipeline_batch::clean_and_query(&ctx).await.unwrap()
}

/// Rows as JSON objects, nulls dropped and timestamps in one spelling
/// (Spark and Delta write `...Z` or `.000`), sorted.
pub fn table_rows(batches: &[RecordBatch]) -> Vec<Value> {
    sorted(ordered_rows(batches))
}

/// Rows in one order, for comparing tables whose order means nothing.
pub fn sorted(mut rows: Vec<Value>) -> Vec<Value> {
    rows.sort_by_key(|r| r.to_string());
    rows
}

/// [`table_rows`] in the tables' own order.
pub fn ordered_rows(batches: &[RecordBatch]) -> Vec<Value> {
    let mut buf = Vec::new();
    {
        let mut w: datafusion::arrow::json::Writer<_, LineDelimited> = WriterBuilder::new().with_explicit_nulls(true).build(&mut buf);
        for b in batches {
            w.write(b).unwrap();
        }
        w.finish().unwrap();
    }
    String::from_utf8(buf).unwrap().lines().map(|l| normalise(serde_json::from_str(l).unwrap())).collect()
}

pub fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, x)| !x.is_null()).map(|(k, x)| (k, normalise(x))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        Value::String(s) => Value::String(normalise_timestamp(&s).unwrap_or(s)),
        other => other,
    }
}

/// `2019-04-07T22:11:02.000Z` and `2019-04-07T22:11:02.250Z` as arrow
/// writes a zone-less timestamp: `2019-04-07T22:11:02`, `...02.250`.
fn normalise_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let looks_like = s.len() >= 19 && b[4] == b'-' && b[10] == b'T' && b[13] == b':';
    if !looks_like {
        return None;
    }
    let t = s.trim_end_matches('Z');
    let t = t.strip_suffix(".000").unwrap_or(t);
    let t = if t.contains('.') { t.trim_end_matches('0') } else { t };
    Some(t.to_string())
}

/// Panics with the rows that differ (a few of them, duplicates counted),
/// not the whole tables.
pub fn assert_same_rows(label: &str, ours: &[Value], want: &[Value]) {
    if ours == want {
        return;
    }
    let only = |x: &[Value], y: &[Value]| {
        let mut counts: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        x.iter().for_each(|r| *counts.entry(r.to_string()).or_default() += 1);
        y.iter().for_each(|r| *counts.entry(r.to_string()).or_default() -= 1);
        counts.into_iter().filter(|(_, n)| *n > 0).map(|(r, _)| r).take(5).collect::<Vec<_>>()
    };
    panic!(
        "{label}: {} rows, expected {}\nonly ours: {:?}\nonly expected: {:?}\n(same rows in another order if both are empty)",
        ours.len(),
        want.len(),
        only(ours, want),
        only(want, ours)
    );
}
