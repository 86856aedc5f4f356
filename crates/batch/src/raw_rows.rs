//! What counts as a raw row: the one rule the batch job (for each line of
//! the sink's objects) and the stream worker (for each Kinesis record) use
//! to turn JSON text into the `<kind>_raw` columns of SPEC 2, or to refuse
//! it with a reason (SPEC 8.6). It is written to agree with Spark's JSON
//! reader, which the rendered notebook uses, on everything the emulators
//! put on the wire:
//!
//! - a JSON object is one record; an array of objects is one record per
//!   element (some emulators post `{"value": [row]}`); blank lines are
//!   skipped;
//! - integer columns take JSON integers, float columns any JSON number,
//!   text columns any value (a number or `true` becomes its text, a nested
//!   value its compact JSON); `null` and a missing field are null;
//! - a line that is not JSON, or is not an object or an array of objects,
//!   is refused whole; so is a line in which any record has a field of the
//!   wrong type (Spark marks such a line corrupt), counted as the records
//!   it holds;
//! - a record without its key column (`Kind::key_column`) is refused on its
//!   own: it is not a row of its kind.
//!
//! Decoding goes straight from the text into Arrow builders: strings
//! without escapes are borrowed from the input, no JSON tree is built.
//!
//! Text seen before is not decoded again. The emulators resend rows of
//! fixed tables, so most lines repeat byte for byte (the bench's input:
//! 11,000 distinct lines in 1,000,000 per kind), and equal text gives
//! equal rows, which cleaning drops as exact duplicates anyway. A repeat
//! only adds one to its rows' [`OCCURRENCES_COLUMN`], so every count of
//! the summary still counts every record read. Text with any refusal is
//! never remembered: each of its occurrences is refused where it is.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use contract::{Kind, RawType};
use datafusion::arrow::array::{ArrayRef, Float64Builder, Int64Builder, RecordBatch, StringBuilder, UInt64Array};
use datafusion::arrow::datatypes::{self, DataType, Schema, SchemaRef};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Rows per Arrow batch the decoder emits.
const BATCH_ROWS: usize = 8192;

pub use templates::OCCURRENCES_COLUMN;

/// The raw schema of a kind plus [`OCCURRENCES_COLUMN`]: what the decoder's
/// batches hold.
pub fn decoded_schema(kind: Kind) -> Schema {
    let mut fields: Vec<datatypes::Field> = crate::raw_schema(kind).fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(datatypes::Field::new(OCCURRENCES_COLUMN, DataType::UInt64, false));
    Schema::new(fields)
}

/// What the decoder remembers of a text it decoded without refusal.
struct Remembered {
    /// Its rows' positions among the decoder's rows.
    first_row: usize,
    rows: usize,
    /// (column, placeholder) counts its rows added to `nulled`.
    nulled: Vec<(usize, usize)>,
}

/// Text that could not be taken as rows of the kind, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: String,
    /// How many records the refused text holds (1 unless it is an array
    /// of records): the count a reader of the same text would have seen.
    pub records: u64,
}

/// What one line (or Kinesis record) gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineOutcome {
    /// Rows appended to the decoder.
    pub rows: u64,
    /// Refusals: at most one for the whole line, or one per keyless record.
    pub refused: Vec<Refused>,
}

enum ColumnBuilder {
    Int(Int64Builder),
    Float(Float64Builder),
    Text(StringBuilder),
}

/// Decodes JSON text into raw rows of one kind.
pub struct RawRowDecoder {
    kind: Kind,
    columns: &'static [(&'static str, RawType)],
    key: usize,
    schema: SchemaRef,
    builders: Vec<ColumnBuilder>,
    pending: usize,
    batches: Vec<RecordBatch>,
    /// Per column, the values cleaning will null (the empty string first),
    /// for the pin text columns; counted here so the summary needs no
    /// second pass over the rows.
    placeholders: Vec<Option<&'static [&'static str]>>,
    nulled: Vec<Vec<u64>>,
    /// Texts decoded without refusal, by their bytes. Hashed with foldhash:
    /// SipHash over every line cost more than decoding the repeats saves.
    seen: HashMap<Box<[u8]>, Remembered, foldhash::fast::RandomState>,
    /// Per row held (flushed or pending): times its text occurred.
    occurrences: Vec<u64>,
    /// Placeholder hits of the text being appended.
    line_nulled: Vec<(usize, usize)>,
}

impl RawRowDecoder {
    pub fn new(kind: Kind) -> Self {
        let columns = contract::raw_columns(kind);
        let key = columns.iter().position(|(c, _)| *c == kind.key_column()).expect("the key is a raw column");
        let mut decoder = Self {
            kind,
            columns,
            key,
            schema: Arc::new(crate::raw_schema(kind)),
            builders: Vec::new(),
            pending: 0,
            batches: Vec::new(),
            placeholders: Vec::new(),
            nulled: Vec::new(),
            seen: HashMap::default(),
            occurrences: Vec::new(),
            line_nulled: Vec::new(),
        };
        let nulled_values = if kind == Kind::Pin { templates::pin_nulled_values() } else { Vec::new() };
        decoder.placeholders = columns.iter().map(|(c, _)| nulled_values.iter().find(|(n, _)| n == c).map(|(_, values)| *values)).collect();
        decoder.nulled = decoder.placeholders.iter().map(|p| vec![0; p.map_or(0, |v| v.len() + 1)]).collect();
        decoder.builders = decoder.new_builders();
        decoder
    }

    fn new_builders(&self) -> Vec<ColumnBuilder> {
        self.columns
            .iter()
            .map(|(_, ty)| match ty {
                RawType::Int => ColumnBuilder::Int(Int64Builder::with_capacity(BATCH_ROWS)),
                RawType::Float => ColumnBuilder::Float(Float64Builder::with_capacity(BATCH_ROWS)),
                RawType::Text => ColumnBuilder::Text(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 16)),
            })
            .collect()
    }

    /// Rows held (each distinct text's rows once), flushed or not.
    pub fn rows_held(&self) -> usize {
        self.occurrences.len()
    }

    /// Decode one JSON text: a line of a sink object, or a Kinesis
    /// record's data (which may span lines). Blank text gives nothing.
    pub fn push(&mut self, text: &[u8]) -> LineOutcome {
        if let Some(seen) = self.seen.get(text) {
            for n in &mut self.occurrences[seen.first_row..seen.first_row + seen.rows] {
                *n += 1;
            }
            for &(column, value) in &seen.nulled {
                self.nulled[column][value] += 1;
            }
            return LineOutcome { rows: seen.rows as u64, refused: Vec::new() };
        }
        // Lines start with `{` or `[`: look at the whole text only when not.
        let starts_with_value = text.first().is_some_and(|b| !b.is_ascii_whitespace());
        if !starts_with_value && text.iter().all(u8::is_ascii_whitespace) {
            return LineOutcome::default();
        }
        let records = match parse_line(self.columns, text) {
            Ok(records) => records,
            Err(refused) => return LineOutcome { rows: 0, refused: vec![refused] },
        };
        if let Some(problem) = records.iter().find_map(|r| r.problem.clone()) {
            return LineOutcome { rows: 0, refused: vec![Refused { reason: problem, records: records.len() as u64 }] };
        }
        let mut outcome = LineOutcome::default();
        let first_row = self.occurrences.len();
        self.line_nulled.clear();
        for record in records {
            if matches!(record.slots[self.key], Slot::Null) {
                let reason = format!("no `{}` field: not a {} row", self.kind.key_column(), self.kind);
                outcome.refused.push(Refused { reason, records: 1 });
                continue;
            }
            self.append(record.slots);
            outcome.rows += 1;
        }
        if outcome.refused.is_empty() && outcome.rows > 0 {
            let remembered = Remembered { first_row, rows: outcome.rows as usize, nulled: self.line_nulled.clone() };
            self.seen.insert(text.into(), remembered);
        }
        outcome
    }

    fn append(&mut self, slots: Vec<Slot<'_>>) {
        for (i, (builder, slot)) in self.builders.iter_mut().zip(slots).enumerate() {
            match (builder, slot) {
                (ColumnBuilder::Int(b), Slot::Int(v)) => b.append_value(v),
                (ColumnBuilder::Float(b), Slot::Float(v)) => b.append_value(v),
                (ColumnBuilder::Text(b), Slot::Text(v)) => {
                    if let Some(values) = self.placeholders[i] {
                        let hit = if v.is_empty() { Some(0) } else { values.iter().position(|p| *p == v).map(|j| j + 1) };
                        if let Some(j) = hit {
                            self.nulled[i][j] += 1;
                            self.line_nulled.push((i, j));
                        }
                    }
                    b.append_value(v)
                }
                (ColumnBuilder::Int(b), _) => b.append_null(),
                (ColumnBuilder::Float(b), _) => b.append_null(),
                (ColumnBuilder::Text(b), _) => b.append_null(),
            }
        }
        self.occurrences.push(1);
        self.pending += 1;
        if self.pending == BATCH_ROWS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.pending == 0 {
            return;
        }
        let fresh = self.new_builders();
        let builders = std::mem::replace(&mut self.builders, fresh);
        let columns: Vec<ArrayRef> = builders
            .into_iter()
            .map(|b| match b {
                ColumnBuilder::Int(mut b) => Arc::new(b.finish()) as ArrayRef,
                ColumnBuilder::Float(mut b) => Arc::new(b.finish()),
                ColumnBuilder::Text(mut b) => Arc::new(b.finish()),
            })
            .collect();
        self.batches.push(RecordBatch::try_new(self.schema.clone(), columns).expect("builders follow the raw schema"));
        self.pending = 0;
    }

    /// Per column and value (`""` for the empty string): how many rows
    /// decoded so far hold a value the cleaning nulls.
    pub fn nulled(&self) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> {
        let mut out = std::collections::BTreeMap::new();
        for (i, counts) in self.nulled.iter().enumerate() {
            let Some(values) = self.placeholders[i] else { continue };
            for (j, &n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
                let value = if j == 0 { "" } else { values[j - 1] };
                out.entry(self.columns[i].0.to_string()).or_insert_with(std::collections::BTreeMap::new).insert(value.to_string(), n);
            }
        }
        out
    }

    /// Every distinct row decoded, in input order, with how many times its
    /// text occurred ([`decoded_schema`]).
    pub fn finish(mut self) -> Vec<RecordBatch> {
        self.flush();
        let schema = Arc::new(decoded_schema(self.kind));
        let mut start = 0;
        self.batches
            .into_iter()
            .map(|b| {
                let counts = UInt64Array::from(self.occurrences[start..start + b.num_rows()].to_vec());
                start += b.num_rows();
                let mut columns = b.columns().to_vec();
                columns.push(Arc::new(counts));
                RecordBatch::try_new(schema.clone(), columns).expect("the raw columns plus the occurrences")
            })
            .collect()
    }
}

/// A column's value in one record.
#[derive(Debug)]
enum Slot<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
}

struct Record<'a> {
    slots: Vec<Slot<'a>>,
    /// The first field of the wrong type, described.
    problem: Option<String>,
}

fn parse_line<'a>(columns: &'static [(&'static str, RawType)], text: &'a [u8]) -> Result<Vec<Record<'a>>, Refused> {
    let refuse = |reason: String| Refused { reason, records: 1 };
    let mut de = serde_json::Deserializer::from_slice(text);
    let line = LineSeed { columns }.deserialize(&mut de).map_err(|e| refuse(format!("not JSON: {e}")))?;
    // Spark ignores text after the first value; we do not drop it silently.
    de.end().map_err(|e| refuse(format!("not JSON: text after the value ({e})")))?;
    match line {
        Line::Records(records) => Ok(records),
        Line::Other(what) => Err(refuse(format!("{what}, not an object or an array of objects"))),
    }
}

enum Line<'a> {
    Records(Vec<Record<'a>>),
    /// A value that holds no records, described (`a JSON number`, ...).
    Other(String),
}

struct LineSeed {
    columns: &'static [(&'static str, RawType)],
}

impl<'de> DeserializeSeed<'de> for LineSeed {
    type Value = Line<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LineSeed {
    type Value = Line<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object or an array of objects")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(Line::Records(vec![RecordVisitor { columns: self.columns }.visit_map(map)?]))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut records = Vec::new();
        let mut not_record = None;
        let mut position = 0;
        while let Some(element) = seq.next_element_seed(ElementSeed { columns: self.columns })? {
            position += 1;
            match element {
                Some(record) => records.push(record),
                None if not_record.is_none() => not_record = Some(position),
                None => {}
            }
        }
        Ok(match not_record {
            Some(p) => Line::Other(format!("an array whose element {p} is not an object")),
            None => Line::Records(records),
        })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Line::Other("a JSON boolean".into()))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Line::Other("a JSON number".into()))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Line::Other("a JSON number".into()))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Line::Other("a JSON number".into()))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Line::Other("a JSON string".into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Line::Other("JSON null".into()))
    }
}

/// An array element: a record, or `None` for anything else (consumed).
struct ElementSeed {
    columns: &'static [(&'static str, RawType)],
}

impl<'de> DeserializeSeed<'de> for ElementSeed {
    type Value = Option<Record<'de>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ElementSeed {
    type Value = Option<Record<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        RecordVisitor { columns: self.columns }.visit_map(map).map(Some)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

struct RecordVisitor {
    columns: &'static [(&'static str, RawType)],
}

impl RecordVisitor {
    fn visit_map<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
        let mut slots: Vec<Slot<'de>> = self.columns.iter().map(|_| Slot::Null).collect();
        let mut problem = None;
        // Emulators send the columns in order: try the next one first.
        let mut next = 0;
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let i = match self.columns.get(next) {
                Some((c, _)) if *c == key.0 => Some(next),
                _ => self.columns.iter().position(|(c, _)| *c == key.0),
            };
            let Some(i) = i else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            next = i + 1;
            let (column, ty) = self.columns[i];
            // A repeated key: the last value wins, as in Spark.
            match map.next_value_seed(FieldSeed { ty })? {
                Ok(s) => slots[i] = s,
                Err(found) => {
                    problem.get_or_insert_with(|| format!("`{column}` is {found}, expected {}", expected(ty)));
                }
            }
        }
        Ok(Record { slots, problem })
    }
}

fn expected(ty: RawType) -> &'static str {
    match ty {
        RawType::Int => "an integer",
        RawType::Float => "a number",
        RawType::Text => "text",
    }
}

/// The value of one field, or what it is when it does not fit the column.
struct FieldSeed {
    ty: RawType,
}

type Field<'a> = Result<Slot<'a>, &'static str>;

impl<'de> DeserializeSeed<'de> for FieldSeed {
    type Value = Field<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed {
    type Value = Field<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(Slot::Null))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(match self.ty {
            RawType::Int => Ok(Slot::Int(v)),
            RawType::Float => Ok(Slot::Float(v as f64)),
            RawType::Text => Ok(Slot::Text(Cow::Owned(v.to_string()))),
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(match self.ty {
            RawType::Int => i64::try_from(v).map(Slot::Int).map_err(|_| "an integer out of range"),
            RawType::Float => Ok(Slot::Float(v as f64)),
            RawType::Text => Ok(Slot::Text(Cow::Owned(v.to_string()))),
        })
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(match self.ty {
            // serde_json gives an f64 for `1.0`, `1e3` and integers beyond u64.
            RawType::Int => Err("not an integer"),
            RawType::Float => Ok(Slot::Float(v)),
            RawType::Text => Ok(Slot::Text(Cow::Owned(v.to_string()))),
        })
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(match self.ty {
            RawType::Text => Ok(Slot::Text(Cow::Borrowed(if v { "true" } else { "false" }))),
            _ => Err("a boolean"),
        })
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(match self.ty {
            RawType::Text => Ok(Slot::Text(Cow::Borrowed(v))),
            _ => Err("a string"),
        })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(match self.ty {
            RawType::Text => Ok(Slot::Text(Cow::Owned(v.to_string()))),
            _ => Err("a string"),
        })
    }
    // Nested values: their compact JSON in a text column, as Spark writes it.
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(match self.ty {
            RawType::Text => Ok(Slot::Text(Cow::Owned(value.to_string()))),
            _ => Err("an object"),
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
        Ok(match self.ty {
            RawType::Text => Ok(Slot::Text(Cow::Owned(value.to_string()))),
            _ => Err("an array"),
        })
    }
}

/// A string borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};

    fn decode(kind: Kind, lines: &[&str]) -> (Vec<RecordBatch>, Vec<LineOutcome>) {
        let mut d = RawRowDecoder::new(kind);
        let outcomes = lines.iter().map(|l| d.push(l.as_bytes())).collect();
        (d.finish(), outcomes)
    }

    fn reason(o: &LineOutcome) -> &str {
        &o.refused[0].reason
    }

    #[test]
    fn objects_and_arrays_of_objects_are_rows() {
        let (batches, outcomes) = decode(
            Kind::Geo,
            &[
                r#"{"ind": 1, "timestamp": "2020-01-01 00:00:00", "latitude": 1.5, "longitude": 2, "country": "A"}"#,
                r#"[{"ind": 2, "country": "B"}, {"ind": 3, "country": "C\u00e9", "extra": [1, {"x": 2}]}]"#,
                "",
                "[]",
            ],
        );
        assert_eq!(outcomes.iter().map(|o| o.rows).collect::<Vec<_>>(), [1, 2, 0, 0]);
        assert!(outcomes.iter().all(|o| o.refused.is_empty()));
        let b = &batches[0];
        assert_eq!(b.num_rows(), 3);
        let ind = b.column(0).as_primitive::<Int64Type>();
        assert_eq!(ind.values().to_vec(), [1, 2, 3]);
        let lon = b.column(3).as_primitive::<Float64Type>();
        assert_eq!(lon.value(0), 2.0);
        assert!(lon.is_null(1));
        let country = b.column(4).as_string::<i32>();
        assert_eq!((country.value(0), country.value(2)), ("A", "Cé"));
    }

    #[test]
    fn text_columns_take_any_value_as_spark_does() {
        let (batches, outcomes) =
            decode(Kind::User, &[r#"{"ind": 1, "first_name": 5, "last_name": true, "date_joined": {"d": [1, 2]}, "age": null}"#]);
        assert_eq!(outcomes[0].rows, 1);
        let b = &batches[0];
        let text = |i: usize| b.column(i).as_string::<i32>().value(0).to_string();
        assert_eq!((text(1), text(2), text(4)), ("5".into(), "true".into(), r#"{"d":[1,2]}"#.into()));
        assert!(b.column(3).is_null(0));
    }

    #[test]
    fn refusals_name_the_problem_and_count_the_records() {
        let (batches, o) = decode(
            Kind::User,
            &[
                "not json",
                "42",
                r#"{"ind": 1} trailing"#,
                r#"{"ind": "7", "first_name": "A"}"#,
                r#"{"ind": 1.0}"#,
                r#"{"ind": 1, "age": "20"}"#,
                r#"[{"ind": 1}, {"ind": 2, "age": "x"}, {"ind": 3}]"#,
                r#"[{"ind": 1}, 2]"#,
                r#"{"ind": 99999999999999999999}"#,
            ],
        );
        assert!(batches.is_empty(), "no row of a refused line is kept");
        assert!(o.iter().all(|o| o.rows == 0 && o.refused.len() == 1));
        assert!(reason(&o[0]).starts_with("not JSON"), "{}", reason(&o[0]));
        assert_eq!(reason(&o[1]), "a JSON number, not an object or an array of objects");
        assert!(reason(&o[2]).contains("text after the value"), "{}", reason(&o[2]));
        assert_eq!(reason(&o[3]), "`ind` is a string, expected an integer");
        assert_eq!(reason(&o[4]), "`ind` is not an integer, expected an integer");
        assert_eq!(reason(&o[5]), "`age` is a string, expected an integer");
        assert_eq!(o[6].refused[0].records, 3, "a bad record refuses its whole line, counted as the records in it");
        assert_eq!(reason(&o[7]), "an array whose element 2 is not an object, not an object or an array of objects");
        assert_eq!(o[7].refused[0].records, 1);
        assert_eq!(reason(&o[8]), "`ind` is not an integer, expected an integer");
    }

    #[test]
    fn a_record_without_its_key_is_refused_alone() {
        let (batches, o) = decode(Kind::Pin, &[r#"[{"index": 1}, {"ind": 2}, {"index": null}]"#, "{}"]);
        assert_eq!(o[0].rows, 1);
        assert_eq!(o[0].refused.len(), 2);
        assert_eq!(o[0].refused[0].reason, "no `index` field: not a pin row");
        assert_eq!(o[1].refused.len(), 1);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 1);
    }

    #[test]
    fn a_repeated_text_is_decoded_once_and_counted_every_time() {
        let pin = r#"{"index": 1, "title": "No Title Data Available", "category": ""}"#;
        let other = r#"{"index": 2, "title": "A title"}"#;
        let bad = r#"{"index": "x"}"#;
        let mut d = RawRowDecoder::new(Kind::Pin);
        let outcomes: Vec<_> = [pin, other, pin, bad, pin, bad].iter().map(|l| d.push(l.as_bytes())).collect();
        assert_eq!(outcomes.iter().map(|o| o.rows).collect::<Vec<_>>(), [1, 1, 1, 0, 1, 0], "a repeat reports its rows");
        assert_eq!(outcomes[5].refused, outcomes[3].refused, "a refused text is refused at each occurrence");
        assert_eq!(d.rows_held(), 2, "each distinct text's row is held once");
        let nulled = d.nulled();
        assert_eq!(nulled["title"]["No Title Data Available"], 3, "placeholders counted per occurrence");
        assert_eq!(nulled["category"][""], 3);
        let batches = d.finish();
        assert_eq!(batches[0].schema().as_ref(), &decoded_schema(Kind::Pin));
        let occurrences = batches[0].column_by_name(OCCURRENCES_COLUMN).unwrap().as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
        assert_eq!(occurrences.values().to_vec(), [3, 1]);
        // Text that differs only in spacing is another text: decoded again,
        // and left to cleaning's exact-duplicate rule.
        let mut d = RawRowDecoder::new(Kind::Pin);
        d.push(pin.as_bytes());
        d.push(pin.replace(": ", ":").as_bytes());
        assert_eq!(d.rows_held(), 2);
    }

    #[test]
    fn batches_are_cut_at_the_batch_size() {
        let mut d = RawRowDecoder::new(Kind::Geo);
        for i in 0..BATCH_ROWS + 5 {
            d.push(format!(r#"{{"ind": {i}, "country": "A"}}"#).as_bytes());
        }
        let sizes: Vec<_> = d.finish().iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, [BATCH_ROWS, 5]);
    }
}
