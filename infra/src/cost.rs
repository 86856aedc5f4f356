//! What a plan costs per month (`provision --dry-run`), component by
//! component, from the dated price table `infra/files/prices.toml`, for the
//! two data paths: the original's (the Confluent REST proxy on the client
//! machine and MSK Connect for the S3 sink) and ours (`pipeline ingest` and
//! `pipeline sink` on the same machine, no MSK Connect).
//!
//! Fixed costs (instances, brokers, storage, shards) are summed; costs that
//! grow with use (API Gateway requests, Kinesis PUT payload units, S3,
//! data transfer) are shown as rates, with the usage plan's ceiling where
//! the configuration has one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use templates::config::{ApiAuth, DataPath, PipelineConfig};

use crate::provision::Component;

/// The table shipped with the tool; its date is printed with every estimate.
pub const PRICE_TABLE: &str = include_str!("../files/prices.toml");
pub const PRICE_TABLE_PATH: &str = "infra/files/prices.toml";

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("the price table {PRICE_TABLE_PATH} does not parse: {0}")]
    Table(#[from] toml::de::Error),
    #[error(
        "no prices for region {region} in {PRICE_TABLE_PATH} (it has {known}); add the region's prices there \
         from AWS's pricing pages to get a cost estimate"
    )]
    Region { region: String, known: String },
    #[error(
        "no price for {what} `{name}` in {region} in {PRICE_TABLE_PATH} (it has {known}); add it there, \
         or pick a listed one"
    )]
    Missing { what: &'static str, name: String, region: String, known: String },
}

#[derive(Debug, Deserialize)]
pub struct PriceTable {
    pub as_of: String,
    pub hours_per_month: f64,
    pub regions: BTreeMap<String, RegionPrices>,
}

#[derive(Debug, Deserialize)]
pub struct RegionPrices {
    pub msk_broker_hour: BTreeMap<String, f64>,
    pub msk_storage_gb_month: f64,
    pub msk_connect_mcu_hour: f64,
    pub mwaa_environment_hour: BTreeMap<String, f64>,
    pub ec2_instance_hour: BTreeMap<String, f64>,
    pub ebs_gp3_gb_month: f64,
    pub api_gateway_rest_per_million: f64,
    pub kinesis_shard_hour: f64,
    pub kinesis_put_units_per_million: f64,
    /// The NAT gateway MWAA's private subnets route through, by the hour
    /// and by the gigabyte it passes.
    pub nat_gateway_hour: f64,
    pub nat_gateway_gb: f64,
    /// Every public IPv4 address, in use or not.
    pub public_ipv4_hour: f64,
    pub s3_put_per_thousand: f64,
}

impl PriceTable {
    pub fn shipped() -> Result<Self, CostError> {
        Ok(toml::from_str(PRICE_TABLE)?)
    }
}

/// Which data path a cost belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paths {
    Both,
    /// The Confluent proxy and MSK Connect.
    Original,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CostLine {
    pub component: &'static str,
    pub item: String,
    /// US dollars per month; None when the component is not made.
    pub monthly: Option<f64>,
    pub paths: Paths,
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UsageRate {
    pub component: &'static str,
    pub rate: String,
    pub ceiling: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CostEstimate {
    /// The path this configuration builds (`ec2.data_path`).
    pub chosen: DataPath,
    pub region: String,
    pub as_of: String,
    pub hours_per_month: f64,
    pub lines: Vec<CostLine>,
    pub usage: Vec<UsageRate>,
}

impl CostEstimate {
    /// Fixed monthly cost of the original data path.
    pub fn original_total(&self) -> f64 {
        self.lines.iter().filter_map(|l| l.monthly).sum()
    }

    /// Fixed monthly cost with our binaries in place of the proxy and MSK Connect.
    pub fn ours_total(&self) -> f64 {
        self.lines.iter().filter(|l| l.paths == Paths::Both).filter_map(|l| l.monthly).sum()
    }
}

/// The root volume of the client machine: Amazon Linux 2023's AMI default.
const CLIENT_ROOT_VOLUME_GB: f64 = 8.0;
/// Streams per deployment: pin, geo and user.
const STREAMS: f64 = 3.0;
/// MCUs per MSK Connect worker (`connect.rs` provisions one each).
const MCU_PER_WORKER: f64 = 1.0;

fn price(table: &BTreeMap<String, f64>, what: &'static str, name: &str, region: &str) -> Result<f64, CostError> {
    table.get(name).copied().ok_or_else(|| CostError::Missing {
        what,
        name: name.to_string(),
        region: region.to_string(),
        known: table.keys().cloned().collect::<Vec<_>>().join(", "),
    })
}

/// The monthly cost of what `config` makes, leaving out the skipped components.
pub fn estimate(config: &PipelineConfig, skip: &BTreeSet<Component>, table: &PriceTable) -> Result<CostEstimate, CostError> {
    let region = config.region.as_str();
    let prices = table.regions.get(region).ok_or_else(|| CostError::Region {
        region: region.to_string(),
        known: table.regions.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    let hours = table.hours_per_month;
    let made = |c: Component| !skip.contains(&c);
    let skipped = |c: Component, item: String, paths: Paths| CostLine {
        component: c.name(),
        item,
        monthly: None,
        paths,
        note: Some("skipped (--skip)".into()),
    };
    let mut lines = Vec::new();

    let k = &config.kafka;
    let brokers = format!("{} x {} brokers", k.broker_count, k.broker_instance_type);
    let storage = format!("{} x {} GB broker storage", k.broker_count, k.broker_volume_gb);
    if made(Component::Msk) {
        let hour = price(&prices.msk_broker_hour, "MSK broker type", &k.broker_instance_type, region)?;
        lines.push(CostLine {
            component: "msk",
            item: brokers,
            monthly: Some(f64::from(k.broker_count) * hour * hours),
            paths: Paths::Both,
            note: None,
        });
        lines.push(CostLine {
            component: "msk",
            item: storage,
            monthly: Some(f64::from(k.broker_count) * f64::from(k.broker_volume_gb) * prices.msk_storage_gb_month),
            paths: Paths::Both,
            note: None,
        });
    } else {
        lines.push(skipped(Component::Msk, brokers, Paths::Both));
    }

    let workers = f64::from(config.connect.workers);
    let connect = format!("S3 sink: {} worker(s) x {MCU_PER_WORKER} MCU", config.connect.workers);
    if made(Component::Connect) {
        lines.push(CostLine {
            component: "connect",
            item: connect,
            monthly: Some(workers * MCU_PER_WORKER * prices.msk_connect_mcu_hour * hours),
            paths: Paths::Original,
            note: Some("our path: `pipeline sink` on the client machine instead".into()),
        });
    } else {
        lines.push(skipped(Component::Connect, connect, Paths::Original));
    }

    let a = &config.airflow;
    let mwaa = format!("{} environment", a.environment_class);
    if !made(Component::Mwaa) {
        lines.push(skipped(Component::Mwaa, mwaa, Paths::Both));
    } else if a.subnet_ids.is_empty() {
        lines.push(CostLine {
            component: "mwaa",
            item: mwaa,
            monthly: None,
            paths: Paths::Both,
            note: Some("not made until airflow.subnet_ids is set".into()),
        });
    } else {
        let hour = price(&prices.mwaa_environment_hour, "MWAA environment class", &a.environment_class, region)?;
        lines.push(CostLine { component: "mwaa", item: mwaa, monthly: Some(hour * hours), paths: Paths::Both, note: None });
        // MWAA runs in private subnets, which reach AWS's endpoints through a
        // NAT gateway; provision does not make it, but the deployment needs it.
        lines.push(CostLine {
            component: "mwaa",
            item: "NAT gateway of its private subnets".into(),
            monthly: Some(prices.nat_gateway_hour * hours),
            paths: Paths::Both,
            note: Some("yours, not provisioned; none extra if the subnets share one already".into()),
        });
    }

    let ec2 = &config.ec2;
    let client = format!("client machine {} + {CLIENT_ROOT_VOLUME_GB} GB gp3", ec2.instance_type);
    if made(Component::Client) {
        let hour = price(&prices.ec2_instance_hour, "EC2 instance type", &ec2.instance_type, region)?;
        lines.push(CostLine {
            component: "client",
            item: client,
            monthly: Some(hour * hours + CLIENT_ROOT_VOLUME_GB * prices.ebs_gp3_gb_month),
            paths: Paths::Both,
            note: Some("runs the REST proxy (original) or pipeline ingest + sink (ours)".into()),
        });
        lines.push(CostLine {
            component: "client",
            item: "public IPv4 address of the client machine".into(),
            monthly: Some(prices.public_ipv4_hour * hours),
            paths: Paths::Both,
            note: None,
        });
    } else {
        lines.push(skipped(Component::Client, client, Paths::Both));
    }

    let shards = f64::from(config.kinesis.shard_count);
    let kinesis = format!("3 streams x {} shard(s)", config.kinesis.shard_count);
    if made(Component::Kinesis) {
        lines.push(CostLine {
            component: "kinesis",
            item: kinesis,
            monthly: Some(STREAMS * shards * prices.kinesis_shard_hour * hours),
            paths: Paths::Both,
            note: None,
        });
    } else {
        lines.push(skipped(Component::Kinesis, kinesis, Paths::Both));
    }

    let mut usage = Vec::new();
    if made(Component::ApiGateway) {
        let g = &config.api_gateway;
        let ceiling = match g.auth {
            ApiAuth::None => Some("no ceiling: api_gateway.auth = \"none\" has no usage plan".to_string()),
            ApiAuth::ApiKey => {
                let per_month = match g.quota_period.as_str() {
                    "DAY" => 365.0 / 12.0,
                    "WEEK" => 365.0 / 12.0 / 7.0,
                    _ => 1.0,
                };
                let requests = f64::from(g.quota_limit) * per_month;
                Some(format!(
                    "at most ${:.2} at the usage plan's quota ({} per {}, about {:.1} million a month)",
                    requests / 1e6 * prices.api_gateway_rest_per_million,
                    g.quota_limit,
                    g.quota_period,
                    requests / 1e6
                ))
            }
        };
        usage.push(UsageRate {
            component: "api_gateway",
            rate: format!("${:.2} per million requests", prices.api_gateway_rest_per_million),
            ceiling,
        });
    }
    // The sink writes one object per flush.size records, on either path.
    let flush = f64::from(config.sink.flush_size.max(1));
    usage.push(UsageRate {
        component: "s3",
        rate: format!(
            "${:.3} per 1,000 PUTs: ${:.3} per million records at flush.size {}",
            prices.s3_put_per_thousand,
            1e6 / flush / 1000.0 * prices.s3_put_per_thousand,
            config.sink.flush_size
        ),
        ceiling: None,
    });
    if made(Component::Mwaa) && !a.subnet_ids.is_empty() {
        usage.push(UsageRate {
            component: "mwaa",
            rate: format!("${:.3} per GB through the NAT gateway", prices.nat_gateway_gb),
            ceiling: None,
        });
    }
    if made(Component::Kinesis) {
        usage.push(UsageRate {
            component: "kinesis",
            rate: format!("${:.3} per million PUT payload units (25 KB each)", prices.kinesis_put_units_per_million),
            ceiling: None,
        });
    }
    Ok(CostEstimate {
        chosen: config.ec2.data_path,
        region: region.to_string(),
        as_of: table.as_of.clone(),
        hours_per_month: hours,
        lines,
        usage,
    })
}

fn dollars(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("${v:.2}"))
}

impl fmt::Display for CostEstimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "monthly cost of this plan in {} ({} h a month; on-demand list prices of {} from {PRICE_TABLE_PATH}):",
            self.region, self.hours_per_month, self.as_of
        )?;
        writeln!(f, "  {:<12} {:<44} {:>14} {:>14}  note", "component", "item", "original path", "our binaries")?;
        for l in &self.lines {
            let ours = if l.paths == Paths::Original { Some(0.0).filter(|_| l.monthly.is_some()) } else { l.monthly };
            writeln!(
                f,
                "  {:<12} {:<44} {:>14} {:>14}  {}",
                l.component,
                l.item,
                dollars(l.monthly),
                dollars(ours),
                l.note.as_deref().unwrap_or("")
            )?;
        }
        writeln!(
            f,
            "  {:<12} {:<44} {:>14} {:>14}",
            "total",
            "fixed, per month",
            format!("${:.2}", self.original_total()),
            format!("${:.2}", self.ours_total())
        )?;
        for u in &self.usage {
            match &u.ceiling {
                Some(c) => writeln!(f, "  plus {}: {}; {}", u.component, u.rate, c)?,
                None => writeln!(f, "  plus {}: {}", u.component, u.rate)?,
            }
        }
        writeln!(f, "  not counted: S3 storage and requests, data transfer, CloudWatch logs, taxes and free tiers")?;
        match self.chosen {
            DataPath::Pipeline => writeln!(
                f,
                "  this plan builds the `our binaries` column (ec2.data_path = \"pipeline\"); ec2.data_path = \"original\" builds the other"
            ),
            DataPath::Original => writeln!(
                f,
                "  this plan builds the `original path` column (ec2.data_path = \"original\"); ec2.data_path = \"pipeline\" builds the other"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PipelineConfig {
        let mut c: PipelineConfig = toml::from_str("uid = \"0e2a0bfcc015\"").unwrap();
        c.region = "us-east-1".into();
        c
    }

    fn table() -> PriceTable {
        PriceTable::shipped().unwrap()
    }

    #[test]
    fn the_shipped_table_is_dated_and_prices_the_defaults() {
        let t = table();
        assert!(t.as_of.len() == 10 && t.as_of.starts_with("20"), "{}", t.as_of);
        let c = config();
        let e = estimate(&c, &BTreeSet::new(), &t).unwrap();
        assert!(e.lines.iter().any(|l| l.component == "msk" && l.monthly.is_some()));
    }

    /// Each line is its count times its price times the hours, and the two
    /// totals differ by exactly MSK Connect.
    #[test]
    fn lines_are_count_times_price_and_our_path_drops_msk_connect() {
        let mut c = config();
        c.kafka.broker_instance_type = "kafka.m5.large".into();
        c.kafka.broker_count = 3;
        c.kafka.broker_volume_gb = 100;
        c.connect.workers = 2;
        c.kinesis.shard_count = 2;
        c.airflow.subnet_ids = vec!["subnet-a".into(), "subnet-b".into()];
        c.airflow.environment_class = "mw1.small".into();
        c.ec2.instance_type = "t2.micro".into();
        let t = table();
        let p = &t.regions["us-east-1"];
        let h = t.hours_per_month;
        let e = estimate(&c, &BTreeSet::new(), &t).unwrap();
        let line = |item: &str| e.lines.iter().find(|l| l.item.contains(item)).unwrap().monthly.unwrap();
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} != {b}");
        close(line("brokers"), 3.0 * p.msk_broker_hour["kafka.m5.large"] * h);
        close(line("broker storage"), 300.0 * p.msk_storage_gb_month);
        close(line("MCU"), 2.0 * p.msk_connect_mcu_hour * h);
        close(line("mw1.small"), p.mwaa_environment_hour["mw1.small"] * h);
        close(line("t2.micro"), p.ec2_instance_hour["t2.micro"] * h + 8.0 * p.ebs_gp3_gb_month);
        close(line("shard"), 3.0 * 2.0 * p.kinesis_shard_hour * h);
        close(line("NAT gateway"), p.nat_gateway_hour * h);
        close(line("public IPv4"), p.public_ipv4_hour * h);
        close(e.original_total() - e.ours_total(), line("MCU"));
        let text = e.to_string();
        assert!(text.contains(&t.as_of) && text.contains("original path") && text.contains("our binaries"), "{text}");
        assert!(text.contains("at the usage plan's quota"), "{text}");
    }

    /// One PUT per flush.size records: the original's flush.size 1 costs a
    /// thousand times what 1000 does, per record.
    #[test]
    fn s3_requests_are_priced_at_the_configured_flush_size() {
        let t = table();
        let put = t.regions["us-east-1"].s3_put_per_thousand;
        for (flush, per_million) in [(1, 1000.0 * put), (1000, put)] {
            let mut c = config();
            c.sink.flush_size = flush;
            let e = estimate(&c, &BTreeSet::new(), &t).unwrap();
            let rate = &e.usage.iter().find(|u| u.component == "s3").unwrap().rate;
            assert!(rate.contains(&format!("${per_million:.3} per million records at flush.size {flush}")), "{rate}");
        }
    }

    #[test]
    fn skipped_components_and_mwaa_without_subnets_cost_nothing() {
        let mut c = config();
        c.airflow.subnet_ids.clear();
        let skip: BTreeSet<Component> = [Component::Msk, Component::Connect].into();
        let e = estimate(&c, &skip, &table()).unwrap();
        for component in ["msk", "connect", "mwaa"] {
            let l = e.lines.iter().find(|l| l.component == component).unwrap();
            assert_eq!(l.monthly, None, "{component}");
        }
        assert_eq!(e.original_total(), e.ours_total(), "without MSK Connect the paths cost the same");
    }

    #[test]
    fn an_unpriced_region_or_type_names_the_table_and_what_it_has() {
        let mut c = config();
        c.region = "xx-nowhere-1".into();
        let err = estimate(&c, &BTreeSet::new(), &table()).unwrap_err().to_string();
        assert!(err.contains("xx-nowhere-1") && err.contains(PRICE_TABLE_PATH) && err.contains("us-east-1"), "{err}");
        let mut c = config();
        c.kafka.broker_instance_type = "kafka.z9.huge".into();
        let err = estimate(&c, &BTreeSet::new(), &table()).unwrap_err().to_string();
        assert!(err.contains("kafka.z9.huge") && err.contains("kafka.m5.large"), "{err}");
    }
}
