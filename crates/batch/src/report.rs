//! `pipeline batch --report report.html`: one self-contained page with a bar
//! chart per question, the cleaning summary and the input it read, for a
//! person to look at. Nothing is fetched: styles are inline and the charts
//! are inline SVG. The SVG is written here rather than with a plotting
//! crate: those lay text out with a font stack (system fonts or an embedded
//! TTF), while inline SVG leaves text to the browser.

use std::fmt::Write as _;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::array_value_to_string;

use super::{BatchOutput, Table};

/// Bars drawn per chart; a longer result keeps its first rows (in the
/// query's order) and says how many it left out.
const MAX_BARS: usize = 40;

/// One bar: the row's other columns joined, and its last numeric column.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
}

/// The bars a result's chart shows (the Databricks notebook draws the same).
pub fn chart_bars(table: &Table) -> Vec<Bar> {
    let mut all = bars(table).0;
    all.truncate(MAX_BARS);
    all
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(_, _))
}

/// The bars of a result: label from its non-numeric columns (and the
/// numeric ones before the last, such as a year), value from its last
/// numeric column.
fn bars(table: &Table) -> (Vec<Bar>, Option<String>) {
    let fields = table.schema.fields();
    let Some(value_col) = fields.iter().rposition(|f| numeric(f.data_type())) else { return (Vec::new(), None) };
    let label_cols: Vec<usize> = (0..fields.len()).filter(|i| *i != value_col).collect();
    let mut out = Vec::new();
    for batch in &table.batches {
        for row in 0..batch.num_rows() {
            let label =
                label_cols.iter().map(|&c| array_value_to_string(batch.column(c), row).unwrap_or_default()).collect::<Vec<_>>().join(" · ");
            let v = batch.column(value_col);
            let value = if v.is_null(row) { 0.0 } else { array_value_to_string(v, row).ok().and_then(|s| s.parse().ok()).unwrap_or(0.0) };
            out.push(Bar { label, value });
        }
    }
    (out, Some(fields[value_col].name().clone()))
}

/// A horizontal bar chart: one `<rect class="bar">` per bar.
fn chart(id: &str, bars: &[Bar], value_name: &str) -> String {
    let (label_w, bar_w, row_h) = (260.0, 420.0, 22.0);
    let height = (bars.len() as f64 * row_h + 30.0).max(60.0);
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max).max(1e-9);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="chart-{id}" class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" role="img" aria-label="{value_name} per row">"#,
        w = label_w + bar_w + 90.0
    );
    for (i, b) in bars.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        // What fits left of the bars; the whole label is in the tooltip.
        let shown: String =
            if b.label.chars().count() > 40 { b.label.chars().take(39).chain(std::iter::once('…')).collect() } else { b.label.clone() };
        let width = (b.value / max * bar_w).max(1.0);
        let _ = write!(
            svg,
            r##"<text x="{lx}" y="{ty}" text-anchor="end" font-size="12">{shown}</text><rect class="bar" x="{label_w}" y="{y}" width="{width:.1}" height="{h}" fill="#3b6ea8"><title>{label}: {value}</title></rect><text x="{vx:.1}" y="{ty}" font-size="12">{value}</text>"##,
            lx = label_w - 6.0,
            ty = y + 14.0,
            shown = escape(&shown),
            label = escape(&b.label),
            h = row_h - 6.0,
            vx = label_w + width + 4.0,
            value = b.value,
        );
    }
    let _ = write!(svg, r##"<text x="{label_w}" y="{}" font-size="11" fill="#555">{}</text></svg>"##, height - 6.0, escape(value_name));
    svg
}

/// The whole page.
pub fn html(out: &BatchOutput, input: &str, generated_at: &str) -> String {
    let mut page = String::new();
    page.push_str(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Pinterest pipeline: batch report</title>
<style>body{font-family:sans-serif;margin:2em;max-width:900px}h2{margin-top:2em;font-size:1.1em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;font-size:12px;text-align:left}.note{color:#666;font-size:12px}</style></head><body>"#,
    );
    let _ = write!(page, "<h1>Batch report</h1><p>Input <code>{}</code>, generated {}.</p>", escape(input), escape(generated_at));
    page.push_str("<h2>Input and cleaning</h2><table><tr><th>kind</th><th>raw rows</th></tr>");
    for (kind, rows) in &out.raw_rows {
        let _ = write!(page, "<tr><td>{kind}</td><td>{rows}</td></tr>");
    }
    page.push_str("</table><ul>");
    for line in out.summary.lines() {
        let _ = write!(page, "<li>{}</li>", escape(&line));
    }
    page.push_str("</ul>");
    for w in out.summary.warnings() {
        let _ = write!(page, "<p class=\"note\">warning: {}</p>", escape(&w));
    }
    for table in &out.results {
        let (all, value_name) = bars(table);
        let _ = write!(page, "<h2 id=\"{}\">{}</h2>", escape(&table.name), escape(&table.title));
        match value_name {
            Some(value_name) if !all.is_empty() => {
                let shown = &all[..all.len().min(MAX_BARS)];
                page.push_str(&chart(&table.name, shown, &value_name));
                if all.len() > shown.len() {
                    let _ = write!(page, "<p class=\"note\">first {} of {} rows</p>", shown.len(), all.len());
                }
            }
            _ => page.push_str("<p class=\"note\">no rows</p>"),
        }
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bars_scale_to_the_largest() {
        let bars = [Bar { label: "a<b>".into(), value: 5.0 }, Bar { label: "c".into(), value: 10.0 }];
        let svg = chart("q", &bars, "count");
        assert!(svg.contains("a&lt;b&gt;") && !svg.contains("a<b>"));
        assert_eq!(svg.matches(r#"class="bar""#).count(), 2);
        assert!(svg.contains(r#"width="210.0""#) && svg.contains(r#"width="420.0""#), "{svg}");
    }
}
