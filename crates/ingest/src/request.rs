//! Parsing a REST Proxy v2 produce request body into Kafka records.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;
use serde_json::value::RawValue;

use super::errors::ProxyError;

/// The embedded format named by the request's content type (see
/// `negotiation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddedFormat {
    /// `application/vnd.kafka.json.v2+json`: values are JSON, stored as
    /// their compact text.
    Json,
    /// `application/vnd.kafka.binary.v2+json`, and every type that leaves
    /// the embedded format out: values are base64.
    Binary,
}

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub partition: Option<i32>,
}

impl ProduceRecord {
    /// Key plus value bytes: what the producer's `message.max.bytes` bounds.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len)
    }
}

/// Parse `{"records":[{"key":..,"value":..,"partition":..}, ...]}`.
///
/// Values are taken as raw JSON text from the body and stored compact,
/// without building a tree of each value: the ingest server's main cost
/// for batched requests.
///
/// A well-formed body is read in one pass. Anything else is read again
/// step by step, which tells a malformed body (42203) from a wrongly shaped
/// one (42206) and names the fault; a single typed pass cannot tell those
/// apart for input like `[1,`.
pub fn parse_produce(body: &[u8], format: EmbeddedFormat) -> Result<Vec<ProduceRecord>, ProxyError> {
    if let Ok(OneProduceBody(records)) = serde_json::from_slice::<OneProduceBody>(body) {
        if records.is_empty() {
            return Err(ProxyError::empty_records());
        }
        // Every value was parsed with the body: only compacted here.
        return records.into_iter().enumerate().map(|(i, r)| build_record(i, r, format, true)).collect();
    }
    parse_step_by_step(body, format)
}

fn parse_step_by_step(body: &[u8], format: EmbeddedFormat) -> Result<Vec<ProduceRecord>, ProxyError> {
    let doc: &RawValue = serde_json::from_slice(body).map_err(ProxyError::json_conversion)?;
    if !doc.get().starts_with('{') {
        return Err(ProxyError::invalid_payload("the body must be a JSON object with a `records` array"));
    }
    let mut top: HashMap<String, &RawValue> = serde_json::from_str(doc.get()).map_err(ProxyError::json_conversion)?;
    let records = match top.remove("records") {
        Some(r) if r.get().starts_with('[') => r,
        Some(_) => return Err(ProxyError::invalid_payload("`records` must be an array")),
        None => return Err(ProxyError::invalid_payload("the body has no `records` array")),
    };
    let records: Vec<&RawValue> = serde_json::from_str(records.get()).map_err(ProxyError::json_conversion)?;
    if records.is_empty() {
        return Err(ProxyError::empty_records());
    }
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            if !r.get().starts_with('{') {
                return Err(ProxyError::invalid_payload(format!("record {i} is not an object")));
            }
            let mut rec: HashMap<String, &RawValue> = serde_json::from_str(r.get()).map_err(ProxyError::json_conversion)?;
            let fields = RecordFields { key: rec.remove("key"), value: rec.remove("value"), partition: rec.remove("partition") };
            build_record(i, fields, format, false)
        })
        .collect()
}

/// The fields of one record as written (a `null` is kept as its text).
#[derive(Default)]
struct RecordFields<'a> {
    key: Option<&'a RawValue>,
    value: Option<&'a RawValue>,
    partition: Option<&'a RawValue>,
}

/// `parsed`: the values' text was already parsed with the body.
fn build_record(i: usize, rec: RecordFields<'_>, format: EmbeddedFormat, parsed: bool) -> Result<ProduceRecord, ProxyError> {
    if rec.value.is_none() && rec.key.is_none() {
        return Err(ProxyError::invalid_payload(format!("record {i} has neither `value` nor `key`")));
    }
    let partition = match rec.partition.map(|p| serde_json::from_str::<Value>(p.get())) {
        None | Some(Ok(Value::Null)) => None,
        Some(Ok(Value::Number(n))) => match n.as_i64().and_then(|p| i32::try_from(p).ok()) {
            Some(p) if p >= 0 => Some(p),
            _ => return Err(ProxyError::invalid_payload(format!("record {i}: partition {n} is not a partition number"))),
        },
        Some(Ok(other)) => return Err(ProxyError::invalid_payload(format!("record {i}: partition {other} is not a number"))),
        Some(Err(e)) => return Err(ProxyError::json_conversion(e)),
    };
    let key = embedded(i, "key", rec.key, format, parsed)?;
    let value = embedded(i, "value", rec.value, format, parsed)?;
    Ok(ProduceRecord { key, value, partition })
}

fn embedded(i: usize, field: &str, v: Option<&RawValue>, format: EmbeddedFormat, parsed: bool) -> Result<Option<Vec<u8>>, ProxyError> {
    let Some(v) = v.filter(|v| v.get() != "null") else { return Ok(None) };
    match format {
        EmbeddedFormat::Json => {
            let mut out = Vec::with_capacity(v.get().len());
            let text = v.get().as_bytes();
            let compacted = if parsed {
                pipeline_runtime::json::append_compact_parsed(&mut out, text)
            } else {
                pipeline_runtime::json::append_compact(&mut out, text)
            };
            compacted.map_err(ProxyError::json_conversion)?;
            Ok(Some(out))
        }
        EmbeddedFormat::Binary => {
            let text: String = serde_json::from_str(v.get()).map_err(|_| {
                ProxyError::invalid_payload(format!(
                    "record {i}: the {field} must be a base64 string in the binary embedded format (the format when the Content-Type names none); for JSON values send Content-Type: application/vnd.kafka.json.v2+json"
                ))
            })?;
            base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map(Some)
                .map_err(|e| ProxyError::invalid_payload(format!("record {i}: {field} is not valid base64: {e}")))
        }
    }
}

/// The one-pass reading of a well-formed body. Only JSON objects are
/// accepted where the step-by-step reading wants objects (serde's derived
/// structs would also take arrays), and anything it would read
/// differently (a repeated `records` key, escaped field names) fails here
/// and is left to it.
struct OneProduceBody<'a>(Vec<RecordFields<'a>>);

impl<'de> serde::Deserialize<'de> for OneProduceBody<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Body;
        impl<'de> serde::de::Visitor<'de> for Body {
            type Value = OneProduceBody<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object with a `records` array")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut records = None;
                while let Some(name) = map.next_key::<&'de str>()? {
                    if name != "records" {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    } else if records.is_some() {
                        return Err(serde::de::Error::duplicate_field("records"));
                    } else {
                        records = Some(map.next_value::<Vec<OneRecord<'de>>>()?);
                    }
                }
                let records = records.ok_or_else(|| serde::de::Error::missing_field("records"))?;
                Ok(OneProduceBody(records.into_iter().map(|r| r.0).collect()))
            }
        }
        d.deserialize_map(Body)
    }
}

struct OneRecord<'a>(RecordFields<'a>);

impl<'de> serde::Deserialize<'de> for OneRecord<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Record;
        impl<'de> serde::de::Visitor<'de> for Record {
            type Value = OneRecord<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a record object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut rec = RecordFields::default();
                // A repeated field: the last one counts, as in the
                // step-by-step reading.
                while let Some(name) = map.next_key::<&'de str>()? {
                    match name {
                        "key" => rec.key = Some(map.next_value()?),
                        "value" => rec.value = Some(map.next_value()?),
                        "partition" => rec.partition = Some(map.next_value()?),
                        _ => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(OneRecord(rec))
            }
        }
        d.deserialize_map(Record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_values_are_stored_compact_in_key_order() {
        let body = br#"{"records":[{"value": {"b": 1, "a": [1, 2]}}, {"key": "k", "value": "x", "partition": 2}]}"#;
        let recs = parse_produce(body, EmbeddedFormat::Json).unwrap();
        assert_eq!(recs[0].value.as_deref(), Some(br#"{"b":1,"a":[1,2]}"#.as_slice()));
        assert_eq!(recs[0].partition, None);
        assert_eq!(recs[1].key.as_deref(), Some(br#""k""#.as_slice()));
        assert_eq!(recs[1].partition, Some(2));
        let recs = parse_produce(br#"{"records":[{"value":null,"key":"k"},{"value":1.5e3}]}"#, EmbeddedFormat::Json).unwrap();
        assert_eq!(recs[0].value, None, "null is no value");
        assert_eq!(recs[1].value.as_deref(), Some(b"1.5e3".as_slice()), "numbers kept as written");
    }

    #[test]
    fn binary_values_are_base64() {
        let recs = parse_produce(br#"{"records":[{"value":"aGVsbG8="}]}"#, EmbeddedFormat::Binary).unwrap();
        assert_eq!(recs[0].value.as_deref(), Some(b"hello".as_slice()));
        let err = parse_produce(br#"{"records":[{"value":"%%%"}]}"#, EmbeddedFormat::Binary).unwrap_err();
        assert_eq!(err.code, 42206);
    }

    #[test]
    fn bad_bodies_get_their_codes() {
        let code = |b: &[u8]| match parse_produce(b, EmbeddedFormat::Json) {
            Ok(records) => panic!("accepted, {} record(s)", records.len()),
            Err(e) => e.code,
        };
        assert_eq!(code(b"{not json"), 42203);
        assert_eq!(code(b"\xff\xfe"), 42203);
        assert_eq!(code(&[b'['; 10_000]), 42203);
        let deep = format!(r#"{{"records":[{{"value":{}1{}}}]}}"#, "[".repeat(5_000), "]".repeat(5_000));
        assert_eq!(code(deep.as_bytes()), 42203, "nesting beyond the parser's limit");
        assert_eq!(code(b"[1,2]"), 42206);
        assert_eq!(code(br#"{"values":[]}"#), 42206);
        assert_eq!(code(br#"{"records":{}}"#), 42206);
        assert_eq!(code(br#"{"records":[1]}"#), 42206);
        assert_eq!(code(br#"{"records":[{}]}"#), 42206);
        assert_eq!(code(br#"{"records":[{"value":1,"partition":-1}]}"#), 42206);
        assert_eq!(code(br#"{"records":[{"value":1,"partition":"0"}]}"#), 42206);
        assert_eq!(code(br#"{"records":[]}"#), 422);
    }

    /// The one-pass and the step-by-step readings give the same records
    /// for every body the one-pass reading takes.
    #[test]
    fn both_readings_agree() {
        let bodies: [&[u8]; 6] = [
            br#"{"records":[{"value": {"b": 1, "a": [1, 2]}}, {"key": "k", "value": "x", "partition": 2}]}"#,
            br#"{"records":[{"value":null,"key":"k"},{"value":1.5e3}], "other": {"x": [1]}}"#,
            br#"{"records":[{"value":"\u00e9\n", "value": 2}]}"#,
            br#"{"records":[{"key":null}]}"#,
            br#" { "records" : [ { "value" : [ 1 , { "a" : "b c" } ] , "partition" : null } ] } "#,
            br#"{"records":[{"value":1,"partition":0}]}"#,
        ];
        let format = EmbeddedFormat::Json;
        for body in bodies {
            let OneProduceBody(fields) = serde_json::from_slice(body).expect("one-pass reading takes it");
            let one: Vec<_> = fields.into_iter().enumerate().map(|(i, r)| build_record(i, r, format, true).unwrap()).collect();
            assert_eq!(one, parse_step_by_step(body, format).unwrap(), "{}", String::from_utf8_lossy(body));
            assert_eq!(parse_produce(body, format).unwrap(), one);
        }
        // Arrays where objects belong are not records, in either reading.
        assert!(serde_json::from_slice::<OneProduceBody>(br#"[[{"value":1}]]"#).is_err());
        assert!(serde_json::from_slice::<OneProduceBody>(br#"{"records":[[1]]}"#).is_err());
        assert_eq!(parse_produce(br#"{"records":[[1]]}"#, EmbeddedFormat::Json).unwrap_err().code, 42206);
    }
}
