//! `pipeline batch`'s flags, and how its results and cleaning summary are
//! printed (the stream worker prints its summary the same way).

use std::path::PathBuf;

use anyhow::{Context, Result};
use aws_setup::AwsArgs;
use datafusion::arrow::csv::Writer as CsvWriter;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::record_batch::RecordBatch;
use pipeline_runtime::UidArg;
use pipeline_storage::Location;

use crate::{BatchConfig, BatchOutput, CleaningSummary};

/// Clean the sink output and print the analysis tables.
#[derive(clap::Args, Clone, Debug)]
pub struct BatchArgs {
    #[command(flatten)]
    pub uid: UidArg,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// Where the sink wrote: s3://bucket[/prefix] or a directory (default: s3://user-<uid>-bucket).
    #[arg(long)]
    pub input: Option<String>,
    /// Directory to write cleaned tables and results to, as Parquet, with
    /// the quarantine (quarantine/<kind>.json: lines that are not rows of
    /// their kind, with object key, line number and reason) and the
    /// cleaning summary (summary.json).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = Print::Table)]
    pub print: Print,
    /// Exit non-zero when any line was quarantined (after writing
    /// everything); by default such lines are skipped and counted.
    #[arg(long)]
    pub strict: bool,
    /// Also write a self-contained HTML page: a bar chart per question,
    /// the cleaning summary and the input read (nothing fetched from the
    /// network; open it in any browser).
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
}

/// How `pipeline batch` prints the nine results.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Print {
    Table,
    Csv,
    Json,
    None,
}

impl BatchArgs {
    pub fn config(&self) -> Result<BatchConfig> {
        let names = self.uid.names()?;
        let input = self.input.clone().unwrap_or_else(|| format!("s3://{}", names.sink_bucket()));
        Ok(BatchConfig { input: Location::parse(&input)?, names, aws: self.aws.target(), output: self.output.clone(), strict: self.strict })
    }

    pub async fn run(self) -> Result<()> {
        let config = self.config()?;
        let out = crate::run(&config).await.context("batch job failed")?;
        print_output(&out, self.print)?;
        if let Some(path) = &self.report {
            let generated = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string();
            // The input as the user gave it.
            let input = self.input.clone().unwrap_or_else(|| config.input.to_string());
            std::fs::write(path, crate::report::html(&out, &input, &generated))
                .with_context(|| format!("writing the report to {}", path.display()))?;
            eprintln!("report: {}", path.display());
        }
        match &self.output {
            Some(dir) => print_summary(&out.summary, Some(&dir.join("summary.json").display().to_string())),
            None => {
                print_summary(&out.summary, None);
                if let Some((kind, q)) = out.quarantined.first() {
                    eprintln!(
                        "warning: {} line(s) quarantined and not kept (pass --output DIR to keep them); the first: {kind} {} line {}: {}",
                        out.quarantined.len(),
                        q.object,
                        q.line,
                        q.reason
                    );
                }
            }
        }
        Ok(())
    }
}

/// The cleaning summary on stderr, with a warning per column whose values
/// did not parse.
pub fn print_summary(summary: &CleaningSummary, written_to: Option<&str>) {
    match written_to {
        Some(path) => eprintln!("cleaning summary (written to {path}):"),
        None => eprintln!("cleaning summary (pass --output DIR to keep it, and the quarantine, next to the results):"),
    }
    for line in summary.lines() {
        eprintln!("  {line}");
    }
    for warning in summary.warnings() {
        eprintln!("warning: {warning}");
    }
}

fn print_output(out: &BatchOutput, print: Print) -> Result<()> {
    let raw: Vec<String> = out.raw_rows.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    let clean: Vec<String> = out.cleaned.iter().map(|t| format!("{}: {}", t.name, t.rows())).collect();
    eprintln!("raw rows {}; cleaned rows {}", raw.join(", "), clean.join(", "));
    for t in &out.results {
        match print {
            Print::None => {}
            Print::Table => println!("\n{} ({})\n{}", t.title, t.name, t.pretty()),
            Print::Csv => {
                println!("# {} ({})", t.title, t.name);
                let mut w = CsvWriter::new(std::io::stdout());
                for b in &t.batches {
                    w.write(b)?;
                }
                if t.batches.is_empty() {
                    // No rows: still the header.
                    w.write(&RecordBatch::new_empty(t.schema.clone()))?;
                }
            }
            Print::Json => {
                let mut w = LineDelimitedWriter::new(std::io::stdout());
                for b in &t.batches {
                    w.write(b)?;
                }
                w.finish()?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Result<BatchArgs, clap::Error> {
        pipeline_runtime::parse_args(argv)
    }

    #[test]
    fn the_input_defaults_to_the_uids_sink_bucket() {
        let args = parse(&["batch", "--uid", "abc123"]).unwrap();
        assert_eq!(args.config().unwrap().input.to_string(), "s3://user-abc123-bucket");
        let args = parse(&["batch", "--input", "s3://b/some/prefix"]).unwrap();
        assert_eq!(args.config().unwrap().input.to_string(), "s3://b/some/prefix");
    }
}
