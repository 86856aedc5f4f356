//! The cleaning summary: per kind, what was read, refused, dropped, nulled
//! and left unparsed, so that nothing the cleaning does goes unseen. Every
//! batch run and every stream run produces one (SPEC 8.6).

use std::collections::BTreeMap;

use contract::Kind;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};
use templates::{Engine, Templates};

use super::{BatchError, engine_err};

/// Values of one column that did not parse, with one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unparsed {
    pub count: u64,
    /// The smallest such value, so that reruns show the same one.
    pub example: String,
}

/// What cleaning did to one kind. `records_read` = `rows` +
/// `duplicates_dropped` + `quarantined`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindSummary {
    pub records_read: u64,
    pub quarantined: u64,
    pub duplicates_dropped: u64,
    /// Rows of the cleaned table.
    pub rows: u64,
    /// Per column, per placeholder value (`""` for the empty string): how
    /// many values became null.
    pub nulled: BTreeMap<String, BTreeMap<String, u64>>,
    /// Per column: values that are present but did not parse (follower
    /// counts, timestamps); they are null in the cleaned table.
    pub unparsed: BTreeMap<String, Unparsed>,
}

impl KindSummary {
    /// Add another run's (or micro-batch's) counts.
    pub fn merge(&mut self, other: &KindSummary) {
        self.records_read += other.records_read;
        self.quarantined += other.quarantined;
        self.duplicates_dropped += other.duplicates_dropped;
        self.rows += other.rows;
        for (column, values) in &other.nulled {
            let mine = self.nulled.entry(column.clone()).or_default();
            for (value, n) in values {
                *mine.entry(value.clone()).or_default() += n;
            }
        }
        for (column, u) in &other.unparsed {
            match self.unparsed.get_mut(column) {
                Some(mine) => {
                    mine.count += u.count;
                    if u.example < mine.example {
                        mine.example = u.example.clone();
                    }
                }
                None => {
                    self.unparsed.insert(column.clone(), u.clone());
                }
            }
        }
    }
}

/// The summary of a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleaningSummary {
    pub pin: KindSummary,
    pub geo: KindSummary,
    pub user: KindSummary,
}

impl CleaningSummary {
    pub fn kind(&self, kind: Kind) -> &KindSummary {
        match kind {
            Kind::Pin => &self.pin,
            Kind::Geo => &self.geo,
            Kind::User => &self.user,
        }
    }

    pub fn kind_mut(&mut self, kind: Kind) -> &mut KindSummary {
        match kind {
            Kind::Pin => &mut self.pin,
            Kind::Geo => &mut self.geo,
            Kind::User => &mut self.user,
        }
    }

    pub fn quarantined(&self) -> u64 {
        Kind::ALL.iter().map(|k| self.kind(*k).quarantined).sum()
    }

    /// One line per kind, for people.
    pub fn lines(&self) -> Vec<String> {
        Kind::ALL
            .iter()
            .map(|&kind| {
                let s = self.kind(kind);
                let nulled: u64 = s.nulled.values().flat_map(|v| v.values()).sum();
                let unparsed: u64 = s.unparsed.values().map(|u| u.count).sum();
                format!(
                    "{kind}: read {}, quarantined {}, duplicates dropped {}, rows {}; placeholders nulled {nulled}, values unparsed {unparsed}",
                    s.records_read, s.quarantined, s.duplicates_dropped, s.rows
                )
            })
            .collect()
    }

    /// Warnings for values the cleaning turned into null because they did
    /// not parse: one per column, with an example.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            for (column, u) in &self.kind(kind).unparsed {
                out.push(format!("{kind}.{column}: {} value(s) did not parse and are null, e.g. {:?}", u.count, u.example));
            }
        }
        out
    }
}

/// Run the kind's summary SQL on `<kind>_raw`: the values that did not
/// parse (placeholders are counted by the decoder, records by the caller).
pub async fn checks(ctx: &SessionContext, templates: &Templates, kind: Kind) -> Result<KindSummary, BatchError> {
    let step = super::cleaning_step(kind);
    let sql = templates.sql(step.summary_template, Engine::DataFusion)?;
    let batches = ctx
        .sql(&sql)
        .await
        .map_err(engine_err(format!("planning {}", step.summary_template)))?
        .collect()
        .await
        .map_err(engine_err(format!("running {}", step.summary_template)))?;
    let mut summary = KindSummary::default();
    let Some(row) = batches.iter().find(|b| b.num_rows() > 0) else { return Ok(summary) };
    let bad = |what: &str| BatchError::Summary(format!("{}: {what}", step.summary_template));
    let schema = row.schema();
    for (field, column) in schema.fields().iter().zip(row.columns()) {
        let (check, col) = field.name().split_once(':').ok_or_else(|| bad("a column without a check name"))?;
        let text = datafusion::arrow::compute::cast(column, &DataType::Utf8).map_err(|e| bad(&e.to_string()))?;
        let text = text.as_string::<i32>();
        // SUM over no rows is null: nothing counted.
        let value = (!text.is_null(0)).then(|| text.value(0).to_string());
        match check {
            "unparsed" => {
                let n: u64 = value.map_or(Ok(0), |v| v.parse()).map_err(|_| bad("a count that is not a number"))?;
                if n > 0 {
                    summary.unparsed.entry(col.to_string()).or_insert(Unparsed { count: 0, example: String::new() }).count = n;
                }
            }
            "example" => {
                if let Some(example) = value {
                    summary.unparsed.entry(col.to_string()).or_insert(Unparsed { count: 0, example: String::new() }).example = example;
                }
            }
            other => return Err(bad(&format!("unknown check `{other}`"))),
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_keeps_the_smallest_example() {
        let mut a = KindSummary { records_read: 3, rows: 2, quarantined: 1, ..Default::default() };
        a.unparsed.insert("timestamp".into(), Unparsed { count: 1, example: "b".into() });
        let mut b = KindSummary { records_read: 2, rows: 1, duplicates_dropped: 1, ..Default::default() };
        b.unparsed.insert("timestamp".into(), Unparsed { count: 2, example: "a".into() });
        b.nulled.entry("title".into()).or_default().insert("".into(), 4);
        a.merge(&b);
        assert_eq!((a.records_read, a.rows, a.quarantined, a.duplicates_dropped), (5, 3, 1, 1));
        assert_eq!(a.unparsed["timestamp"], Unparsed { count: 3, example: "a".into() });
        assert_eq!(a.nulled["title"][""], 4);
    }
}
