//! AWS's published address ranges (`ip-ranges.json`, documented in the VPC
//! user guide): the IPv4 prefixes of one service in one region. The REST
//! port of the client machine is opened to API Gateway's prefixes only.
//! When the URL cannot be fetched, a dated copy of API Gateway's prefixes
//! kept in the repository (`infra/files/ip-ranges-api-gateway.json`) stands in.

/// API Gateway's prefixes from AWS's file of the date inside it.
const DATED_API_GATEWAY: &str = include_str!("../../files/ip-ranges-api-gateway.json");
const DATED_SOURCE: &str = "infra/files/ip-ranges-api-gateway.json";

use serde::Deserialize;

use super::{ProvisionError, Result};

#[derive(Deserialize)]
struct RangesFile {
    #[serde(rename = "createDate")]
    create_date: String,
    prefixes: Vec<Prefix>,
}

#[derive(Deserialize)]
struct Prefix {
    ip_prefix: String,
    region: String,
    service: String,
}

/// The prefixes of one service and region, and which file they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRanges {
    pub prefixes: Vec<String>,
    /// The file's own `createDate` (`YYYY-MM-DD-hh-mm-ss`).
    pub created: String,
    pub source: String,
}

/// Read the file at `location` (an http(s) URL or a local path) and keep
/// `service`'s prefixes in `region`, sorted and without repeats.
/// A URL that cannot be fetched falls back to the dated copy (API Gateway
/// only), with a warning; a local file the user named must be readable.
pub async fn read(location: &str, service: &str, region: &str) -> Result<ServiceRanges> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return match fetch(location).await {
            Ok(text) => parse(&text, service, region, location),
            Err(why) if service == "API_GATEWAY" => {
                let dated = parse(DATED_API_GATEWAY, service, region, DATED_SOURCE)?;
                tracing::warn!(
                    "cannot fetch {location} ({why}): using the repository's copy of AWS's ranges, created {}; newer ranges are missing from it",
                    dated.created
                );
                Ok(dated)
            }
            Err(why) => Err(unreadable(location, &why)),
        };
    }
    let text =
        std::fs::read_to_string(location.strip_prefix("file://").unwrap_or(location)).map_err(|e| unreadable(location, &e.to_string()))?;
    parse(&text, service, region, location)
}

async fn fetch(url: &str) -> Result<String, String> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(20)).build().map_err(|e| e.to_string())?;
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    resp.text().await.map_err(|e| e.to_string())
}

fn unreadable(location: &str, why: &str) -> ProvisionError {
    ProvisionError::Config(format!(
        "cannot read AWS's address ranges from {location} ({why}). The REST port is opened to API Gateway's published ranges only, never to 0.0.0.0/0: \
         download https://ip-ranges.amazonaws.com/ip-ranges.json where you can and set api_gateway.ip_ranges_url to the file's path, \
         or leave it at the default URL to use the repository's dated copy when the URL is out of reach"
    ))
}

pub fn parse(text: &str, service: &str, region: &str, source: &str) -> Result<ServiceRanges> {
    let file: RangesFile = serde_json::from_str(text).map_err(|e| unreadable(source, &format!("not an ip-ranges.json file: {e}")))?;
    let mut prefixes: Vec<String> =
        file.prefixes.into_iter().filter(|p| p.service == service && p.region == region).map(|p| p.ip_prefix).collect();
    prefixes.sort();
    prefixes.dedup();
    if prefixes.is_empty() {
        return Err(ProvisionError::Config(format!(
            "{source} (created {}) lists no {service} range for region {region}: is the region right, and the file current?",
            file.create_date
        )));
    }
    Ok(ServiceRanges { prefixes, created: file.create_date, source: source.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"{"syncToken": "1", "createDate": "2026-11-30-10-00-00", "prefixes": [
        {"ip_prefix": "198.51.100.0/24", "region": "us-east-1", "service": "API_GATEWAY", "network_border_group": "us-east-1"},
        {"ip_prefix": "192.0.2.0/26", "region": "us-east-1", "service": "API_GATEWAY", "network_border_group": "us-east-1"},
        {"ip_prefix": "192.0.2.0/26", "region": "us-east-1", "service": "API_GATEWAY", "network_border_group": "us-east-1"},
        {"ip_prefix": "203.0.113.0/24", "region": "eu-west-1", "service": "API_GATEWAY", "network_border_group": "eu-west-1"},
        {"ip_prefix": "198.18.0.0/15", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"}
    ], "ipv6_prefixes": []}"#;

    #[test]
    fn only_the_service_in_the_region_sorted_once_each() {
        let r = parse(FILE, "API_GATEWAY", "us-east-1", "test").unwrap();
        assert_eq!(r.prefixes, ["192.0.2.0/26", "198.51.100.0/24"]);
        assert_eq!(r.created, "2026-11-30-10-00-00");
    }

    #[tokio::test]
    async fn an_unreachable_url_falls_back_to_the_dated_copy_a_missing_file_does_not() {
        // Port 9 (discard) on loopback: nothing listens, the fetch fails at once.
        let r = read("http://127.0.0.1:9/ip-ranges.json", "API_GATEWAY", "us-east-1").await.unwrap();
        assert_eq!((r.source.as_str(), r.created.as_str()), (DATED_SOURCE, "2026-09-08-13-47-05"));
        assert_eq!(r.prefixes.len(), 16);
        assert!(r.prefixes.iter().all(|p| p.parse::<std::net::Ipv4Addr>().is_err() && p.contains('/')), "{:?}", r.prefixes);
        let err = read("/nonexistent/ip-ranges.json", "API_GATEWAY", "us-east-1").await.unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ip-ranges.json") && err.contains("api_gateway.ip_ranges_url"), "{err}");
    }

    #[test]
    fn the_dated_copy_covers_every_region_this_tool_deploys_to_within_the_rule_quota() {
        for region in ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1"]
        {
            let r = parse(DATED_API_GATEWAY, "API_GATEWAY", region, DATED_SOURCE).unwrap();
            assert!(!r.prefixes.is_empty() && r.prefixes.len() < 58, "{region}: {}", r.prefixes.len());
        }
    }

    #[test]
    fn a_region_without_ranges_or_a_wrong_file_is_an_error_naming_the_setting_or_region() {
        let err = parse(FILE, "API_GATEWAY", "ap-south-2", "test").unwrap_err().to_string();
        assert!(err.contains("ap-south-2") && err.contains("2026-11-30"), "{err}");
        let err = parse("<html>", "API_GATEWAY", "us-east-1", "test").unwrap_err().to_string();
        assert!(err.contains("api_gateway.ip_ranges_url") && err.contains("0.0.0.0/0"), "{err}");
    }
}
