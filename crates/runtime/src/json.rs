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
    let mut depth = 0usize;
    let mut run_start = 0;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            // Most of a record's bytes are string contents: skip to the
            // closing quote with memchr rather than looking at each byte.
            b'"' => {
                i += 1;
                loop {
                    match json.get(i..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
                        // A backslash and the byte it escapes.
                        Some(at) if json[i + at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at;
                            break;
                        }
                        None => {
                            i = json.len();
                            break;
                        }
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    out.truncate(written);
                    return Err(serde::de::Error::custom(format!("nested deeper than {MAX_DEPTH} levels")));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            // Whitespace between tokens: dropped.
            b' ' | b'\n' | b'\r' | b'\t' => {
                out.extend_from_slice(&json[run_start..i]);
                run_start = i + 1;
            }
            _ => {}
        }
        i += 1;
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

    /// The scan that visits every byte, as it was before strings were
    /// skipped with memchr: the reference the faster scan must agree with.
    fn compact_bytewise(json: &[u8]) -> Vec<u8> {
        let (mut out, mut in_string, mut escaped) = (Vec::new(), false, false);
        for &b in json {
            if in_string {
                (escaped, in_string) = (!escaped && b == b'\\', escaped || b != b'"');
            } else if b == b'"' {
                in_string = true;
            } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                continue;
            }
            out.push(b);
        }
        out
    }

    #[test]
    fn skipping_strings_agrees_with_looking_at_every_byte() {
        // Pieces whose every concatenation is a JSON value's text: strings
        // with escapes (a quote, a backslash at the end, a unicode escape),
        // whitespace inside and outside strings, multibyte UTF-8.
        let values = [
            r#""""#,
            r#""a b""#,
            r#""\\""#,
            r#""x\\\\""#,
            r#""\" \"""#,
            r#""\\\"""#,
            r#""\u00e9 é ü""#,
            "\"tab\\t\"",
            "1.5e3",
            "true",
            "null",
        ];
        let gaps = ["", " ", "\n\t", " \r\n "];
        for (i, a) in values.iter().enumerate() {
            for (j, b) in values.iter().enumerate() {
                let (g1, g2) = (gaps[i % gaps.len()], gaps[j % gaps.len()]);
                let text = format!("{g1}{{{g2}\"k{i}\"{g1}:{g2}[{a},{g1}{b}]{g2},\"s\":{b}{g1}}}{g2}");
                let mut fast = Vec::new();
                append_compact(&mut fast, text.as_bytes()).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_eq!(String::from_utf8(fast).unwrap(), String::from_utf8(compact_bytewise(text.as_bytes())).unwrap(), "{text}");
            }
        }
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
