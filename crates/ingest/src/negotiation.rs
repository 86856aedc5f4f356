//! Content negotiation as the REST Proxy reference describes it: the
//! request's Content-Type names the embedded format (and may leave parts
//! out), the Accept header picks the answer's type or gets 406.
//!
//! Content types have the form
//! `application/vnd.kafka[.<embedded format>][.<api version>]+json`. The
//! embedded format may be left out, and so may the version (meaning the
//! latest, v2). `application/json` and `application/octet-stream` are
//! accepted too. Binary is assumed whenever the embedded format is left
//! out, and also when no Content-Type is sent (the proxy treats that as
//! `application/octet-stream`).

use super::errors::{CONTENT_TYPE_V2, ProxyError};
use super::request::EmbeddedFormat;

/// Answer types this server writes, in its order of preference. They all
/// mean the same v2 JSON body.
const ANSWER_TYPES: [&str; 3] = [CONTENT_TYPE_V2, "application/vnd.kafka+json", "application/json"];

/// The embedded format a produce request's Content-Type names.
pub fn embedded_format(content_type: Option<&str>) -> Result<EmbeddedFormat, ProxyError> {
    let Some(raw) = content_type else { return Ok(EmbeddedFormat::Binary) };
    let media = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let refuse = |why: &str| Err(ProxyError::unsupported_media_type(Some(raw), why));
    match media.as_str() {
        "application/json" | "application/octet-stream" => return Ok(EmbeddedFormat::Binary),
        _ => {}
    }
    let Some(rest) = media.strip_prefix("application/vnd.kafka").and_then(|r| r.strip_suffix("+json")) else {
        return refuse("not a REST Proxy content type");
    };
    let mut format = None;
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        match part {
            "v2" => {}
            "v1" => return refuse("API v1 is not served; use v2"),
            "v3" => return refuse("the v3 API takes application/json under /v3/clusters/..."),
            "json" if format.is_none() => format = Some(EmbeddedFormat::Json),
            "binary" if format.is_none() => format = Some(EmbeddedFormat::Binary),
            "avro" | "protobuf" | "jsonschema" => {
                return refuse("the avro, protobuf and jsonschema formats need a Schema Registry, which this server has not");
            }
            _ => return refuse("unknown embedded format or version"),
        }
    }
    Ok(format.unwrap_or(EmbeddedFormat::Binary))
}

/// The answer's Content-Type for an Accept header, or 406.
pub fn answer_type(accept: Option<&str>) -> Result<&'static str, ProxyError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return Ok(CONTENT_TYPE_V2) };
    // The best (highest quality, then our preference) of the types we write.
    let mut best: Option<(f32, usize)> = None;
    for range in accept.split(',') {
        let mut params = range.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        for (i, answer) in ANSWER_TYPES.iter().enumerate() {
            if accepts(&media, answer) && best.is_none_or(|(bq, bi)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i));
            }
        }
    }
    best.map(|(_, i)| ANSWER_TYPES[i]).ok_or_else(|| ProxyError::not_acceptable(accept, &ANSWER_TYPES))
}

/// Whether a media range admits an answer type: `*` stands for any type or
/// subtype, on either side of the `/` (`*/json` too, which JAX-RS servers
/// such as Confluent's proxy take as `application/json`).
fn accepts(range: &str, answer: &str) -> bool {
    // An embedded format in Accept still means the v2 JSON answer.
    if matches!(range, "application/vnd.kafka.json.v2+json" | "application/vnd.kafka.binary.v2+json") {
        return answer == CONTENT_TYPE_V2;
    }
    let (Some((range_type, range_sub)), Some((answer_type, answer_sub))) = (range.split_once('/'), answer.split_once('/')) else {
        return false;
    };
    (range_type == "*" || range_type == answer_type) && (range_sub == "*" || range_sub == answer_sub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use EmbeddedFormat::{Binary, Json};

    #[test]
    fn request_types_name_the_embedded_format_and_binary_is_the_default() {
        for (ct, want) in [
            ("application/vnd.kafka.json.v2+json", Json),
            ("application/vnd.kafka.json.v2+json; charset=utf-8", Json),
            ("Application/Vnd.Kafka.JSON.v2+JSON", Json),
            ("application/vnd.kafka.json+json", Json),
            ("application/vnd.kafka.binary.v2+json", Binary),
            ("application/vnd.kafka.v2+json", Binary),
            ("application/vnd.kafka+json", Binary),
            ("application/json", Binary),
            ("application/octet-stream", Binary),
        ] {
            assert_eq!(embedded_format(Some(ct)).unwrap(), want, "{ct}");
        }
        assert_eq!(embedded_format(None).unwrap(), Binary);
    }

    #[test]
    fn other_request_types_get_415_with_the_reason() {
        for (ct, why) in [
            ("text/plain", "not a REST Proxy"),
            ("application/vnd.kafka.json.v1+json", "v1"),
            ("application/vnd.kafka.avro.v2+json", "Schema Registry"),
            ("application/vnd.kafka.xml.v2+json", "unknown"),
            ("application/vnd.kafka.json.v2+xml", "not a REST Proxy"),
        ] {
            let e = embedded_format(Some(ct)).unwrap_err();
            assert_eq!(e.code, 415, "{ct}");
            assert!(e.message.contains(why) && e.message.contains(ct), "{ct}: {}", e.message);
        }
    }

    #[test]
    fn accept_picks_the_answer_type_or_406() {
        assert_eq!(answer_type(None).unwrap(), CONTENT_TYPE_V2);
        assert_eq!(answer_type(Some("*/*")).unwrap(), CONTENT_TYPE_V2);
        assert_eq!(answer_type(Some("application/json")).unwrap(), "application/json");
        assert_eq!(answer_type(Some("application/vnd.kafka.v2+json; q=0.9, application/json; q=0.5")).unwrap(), CONTENT_TYPE_V2);
        assert_eq!(answer_type(Some("application/vnd.kafka.v2+json; q=0.4, application/json; q=0.5")).unwrap(), "application/json");
        assert_eq!(answer_type(Some("application/vnd.kafka.json.v2+json")).unwrap(), CONTENT_TYPE_V2);
        assert_eq!(answer_type(Some("text/html, application/*;q=0.1")).unwrap(), CONTENT_TYPE_V2);
        assert_eq!(answer_type(Some("*/json")).unwrap(), "application/json");
        for bad in ["text/html", "application/xml", "application/json;q=0", "application/vnd.kafka.v1+json", "*/xml", "text/*"] {
            let e = answer_type(Some(bad)).unwrap_err();
            assert_eq!((e.code, e.status().as_u16()), (406, 406), "{bad}");
            assert!(e.message.contains("application/vnd.kafka.v2+json"), "{}", e.message);
        }
    }
}
