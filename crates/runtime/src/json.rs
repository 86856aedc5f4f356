//! Compact JSON text: the form values take in Kafka (ingest) and in the
//! sink's objects (one value per line). Shared so both agree byte for byte.

/// serde_json's own nesting limit for building values; its validation of
/// ignored values has none, so the scan below applies it.
const MAX_DEPTH: usize = 128;

/// Append `json` as one compact JSON value: the text as written, minus the
/// whitespace between tokens. Nothing else is rewritten (numbers, escapes
/// and key order stay as the client wrote them), so values already compact,
/// as the emulator sends them, are copied unchanged and never parsed into a
/// tree. Values nested deeper than serde_json would parse are refused, so
/// that no consumer downstream meets one it cannot read. Nothing is
/// appended on error.
pub fn append_compact(out: &mut Vec<u8>, json: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<serde::de::IgnoredAny>(json)?;
    append_compact_parsed(out, json)
}

/// [`append_compact`] for text the caller has already parsed as one JSON
/// value (e.g. a `RawValue` out of a parsed document): only the nesting
/// limit is checked.
pub fn append_compact_parsed(out: &mut Vec<u8>, json: &[u8]) -> Result<(), serde_json::Error> {
    let written = out.len();
    let (mut in_string, mut escaped) = (false, false);
    let mut depth = 0usize;
    let mut run_start = 0;
    for (i, &b) in json.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b'[' || b == b'{' {
            depth += 1;
            if depth > MAX_DEPTH {
                out.truncate(written);
                return Err(serde::de::Error::custom(format!("nested deeper than {MAX_DEPTH} levels")));
            }
        } else if b == b']' || b == b'}' {
            depth -= 1;
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            // Whitespace between tokens: dropped.
            out.extend_from_slice(&json[run_start..i]);
            run_start = i + 1;
        }
    }
    out.extend_from_slice(&json[run_start..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(json: &[u8]) -> Option<String> {
        let mut out = Vec::new();
        append_compact(&mut out, json).ok().map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn values_become_one_compact_line() {
        assert_eq!(compact(br#"{"a":"x y","b":[1,2]}"#).as_deref(), Some(r#"{"a":"x y","b":[1,2]}"#));
        assert_eq!(compact(b"{ \"a\" : \"x\\\" y\",\n \"b\": [1, 2] }\n").as_deref(), Some(r#"{"a":"x\" y","b":[1,2]}"#));
        assert_eq!(compact(br#"{"b":1,"a":2}"#).as_deref(), Some(r#"{"b":1,"a":2}"#), "key order kept");
        assert_eq!(compact(br#""a \" b""#).as_deref(), Some(r#""a \" b""#));
        assert_eq!(compact(b"{not json"), None);
        assert_eq!(compact(b"{\"a\":1} {\"b\":2}"), None, "two values are not one");
        assert_eq!(compact(b""), None);
        assert_eq!(compact(br#"{"k":"a\\" }"#).as_deref(), Some(r#"{"k":"a\\"}"#), "an escaped backslash ends before the quote");
        assert_eq!(
            compact(b"{\"a\": 1.5e3, \"s\": \"\\u00e9 \\/\"}").as_deref(),
            Some(r#"{"a":1.5e3,"s":"\u00e9 \/"}"#),
            "kept as written"
        );
    }

    #[test]
    fn nesting_beyond_the_parser_limit_is_refused() {
        let nested = |n: usize| format!("{} 1{}", "[".repeat(n), "]".repeat(n));
        let mut out = b"kept".to_vec();
        let err = append_compact(&mut out, nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(err.to_string().contains("nested deeper than 128"), "{err}");
        assert_eq!(out, b"kept", "nothing appended");
        let fine = compact(nested(MAX_DEPTH).as_bytes()).expect("at the limit");
        assert!(fine == format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH)), "compact");
    }
}
