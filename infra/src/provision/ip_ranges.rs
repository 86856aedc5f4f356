//! AWS's published address ranges (`ip-ranges.json`, documented in the VPC
//! user guide): the IPv4 prefixes of one service in one region. The REST
//! port of the client machine is opened to API Gateway's prefixes only.

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
pub async fn read(location: &str, service: &str, region: &str) -> Result<ServiceRanges> {
    let text = if location.starts_with("http://") || location.starts_with("https://") {
        fetch(location).await
    } else {
        std::fs::read_to_string(location.strip_prefix("file://").unwrap_or(location)).map_err(|e| e.to_string())
    }
    .map_err(|e| unreadable(location, &e))?;
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
         download https://ip-ranges.amazonaws.com/ip-ranges.json where you can and set api_gateway.ip_ranges_url to the file's path"
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

    #[test]
    fn a_region_without_ranges_or_a_wrong_file_is_an_error_naming_the_setting_or_region() {
        let err = parse(FILE, "API_GATEWAY", "ap-south-2", "test").unwrap_err().to_string();
        assert!(err.contains("ap-south-2") && err.contains("2026-11-30"), "{err}");
        let err = parse("<html>", "API_GATEWAY", "us-east-1", "test").unwrap_err().to_string();
        assert!(err.contains("api_gateway.ip_ranges_url") && err.contains("0.0.0.0/0"), "{err}");
    }
}
