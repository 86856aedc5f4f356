//! The project's Tera templates, embedded in the binary so that rendering
//! needs no files at run time.
//!
//! The batch SQL lives here (in `sql/`) rather than in `pipeline` because it
//! is rendered twice: for DataFusion by `pipeline batch`, and for Spark SQL
//! into the Databricks notebook. One source, two dialects; the differences
//! are the few context variables set by [`Engine`].

pub mod apigateway;
pub mod config;
pub mod databricks;
pub mod render;

use serde::Serialize;
use tera::{Context, Tera};

/// Errors from rendering a template.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("no template named `{0}` (known: {1})")]
    Unknown(String, String),
    #[error("rendering `{name}` failed: {detail}")]
    Render { name: String, detail: String },
    #[error("invalid pipeline config: {0}")]
    Config(String),
    #[error(
        "missing variables, set them in pipeline.toml (or with --set name=value), or run `cargo xtask provision` to discover them:\n{}",
        .0.iter().map(|(file, var)| format!("  {var} (needed by {file})")).collect::<Vec<_>>().join("\n")
    )]
    MissingVariables(Vec<(String, String)>),
}

/// The SQL engine a query is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    DataFusion,
    Spark,
}

impl Engine {
    /// Dialect details that differ between the engines. Everything else in
    /// the SQL files is written in the subset both engines share.
    fn context(self) -> Context {
        let mut ctx = Context::new();
        ctx.insert("engine", &self);
        match self {
            Engine::DataFusion => {
                ctx.insert("q", "\"");
                ctx.insert("array", "make_array");
            }
            Engine::Spark => {
                ctx.insert("q", "`");
                ctx.insert("array", "array");
            }
        }
        ctx.insert("pin_nulled", &pin_nulled_columns());
        ctx.insert("occurrences", OCCURRENCES_COLUMN);
        ctx
    }
}

/// The column `pipeline batch` adds to a raw table: how many times the
/// row's text occurred in the input (its decoder decodes a repeated text
/// once). The summary SQL counts by it; the cleaning SQL, which Spark runs
/// too, never names it.
pub const OCCURRENCES_COLUMN: &str = "__occurrences";

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../", $name)))),*]
    };
}

/// Every template shipped with the project, by path relative to `templates/`.
const TEMPLATES: &[(&str, &str)] = embedded![
    "sql/macros.sql",
    "sql/clean_pin.sql",
    "sql/clean_geo.sql",
    "sql/clean_user.sql",
    "sql/summary_pin.sql",
    "sql/summary_geo.sql",
    "sql/summary_user.sql",
    "sql/q1_popular_category_by_country.sql",
    "sql/q2_popular_category_by_year.sql",
    "sql/q3a_top_user_by_country.sql",
    "sql/q3b_top_country.sql",
    "sql/q4_popular_category_by_age_group.sql",
    "sql/q5_median_followers_by_age_group.sql",
    "sql/q6_users_joined_by_year.sql",
    "sql/q7_median_followers_by_join_year.sql",
    "sql/q8_median_followers_by_age_group_and_join_year.sql",
    "files/kafka/msk_iam.macros",
    "files/kafka/client.properties",
    "files/kafka/kafka-rest.properties",
    "files/kafka/s3-sink-connector.properties",
    "files/ec2/user-data.sh",
    "files/airflow/dag.py",
    "files/airflow/local_dag.py",
    "files/airflow/requirements.txt",
    "files/databricks/sql.macros",
    "files/databricks/batch_notebook.py",
    "files/databricks/stream_notebook.py",
];

/// SPEC 4 pin step 2: the values that mean "no data" in each pin column,
/// besides the empty string (null in every pin text column). The cleaning
/// SQL nulls them and the summary SQL counts them, both rendered from here.
pub const PIN_PLACEHOLDERS: [(&str, &[&str]); 6] = [
    ("title", &["No Title Data Available"]),
    ("description", &["No description available Story format", "No description available", "Untitled"]),
    ("follower_count", &["User Info Error"]),
    ("poster_name", &["User Info Error"]),
    ("tag_list", &["N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"]),
    ("image_src", &["Image src error."]),
];

/// A pin text column and its placeholders, as the SQL templates see them.
#[derive(Debug, Serialize)]
struct NulledColumn {
    column: &'static str,
    values: &'static [&'static str],
}

/// Every text column of `pin_raw` in raw order, with its placeholders: the
/// columns in which cleaning nulls the empty string and these values.
pub fn pin_nulled_values() -> Vec<(&'static str, &'static [&'static str])> {
    pin_nulled_columns().into_iter().map(|c| (c.column, c.values)).collect()
}

fn pin_nulled_columns() -> Vec<NulledColumn> {
    contract::raw_columns(contract::Kind::Pin)
        .iter()
        .filter(|(_, ty)| *ty == contract::RawType::Text)
        .map(|(column, _)| NulledColumn {
            column,
            values: PIN_PLACEHOLDERS.iter().find(|(c, _)| c == column).map(|(_, v)| *v).unwrap_or(&[]),
        })
        .collect()
}

/// The raw tables the cleaning SQL reads, registered by each engine's loader.
pub const RAW_TABLES: [&str; 3] = ["pin_raw", "geo_raw", "user_raw"];

/// A cleaning step: reads `<kind>_raw`, its result is registered as `table`.
#[derive(Debug, Clone, Copy)]
pub struct CleaningStep {
    pub kind: &'static str,
    pub table: &'static str,
    pub template: &'static str,
    /// What the step cannot parse in `<kind>_raw`, in one row:
    /// `unparsed:<column>` and `example:<column>` per parsed column.
    pub summary_template: &'static str,
}

/// Cleaning steps of SPEC section 4, in the order they must run.
pub const CLEANING: [CleaningStep; 3] = [
    CleaningStep { kind: "pin", table: "pin_clean", template: "sql/clean_pin.sql", summary_template: "sql/summary_pin.sql" },
    CleaningStep { kind: "geo", table: "geo_clean", template: "sql/clean_geo.sql", summary_template: "sql/summary_geo.sql" },
    CleaningStep { kind: "user", table: "user_clean", template: "sql/clean_user.sql", summary_template: "sql/summary_user.sql" },
];

/// An analysis query of SPEC section 5.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    /// Short id as numbered in the SPEC (`q1` .. `q8`, `q3a`, `q3b`).
    pub id: &'static str,
    /// The question it answers, for headings.
    pub title: &'static str,
    pub template: &'static str,
    /// Views this query needs registered before it runs, besides the
    /// cleaned tables (3b reads 3a's result).
    pub reads_results_of: &'static [&'static str],
}

pub const QUERIES: [Query; 9] = [
    Query {
        id: "q1",
        title: "Most popular category per country",
        template: "sql/q1_popular_category_by_country.sql",
        reads_results_of: &[],
    },
    Query {
        id: "q2",
        title: "Most popular category per year (2018-2022)",
        template: "sql/q2_popular_category_by_year.sql",
        reads_results_of: &[],
    },
    Query { id: "q3a", title: "User with most followers per country", template: "sql/q3a_top_user_by_country.sql", reads_results_of: &[] },
    Query {
        id: "q3b",
        title: "Country whose top user has the most followers",
        template: "sql/q3b_top_country.sql",
        reads_results_of: &["q3a"],
    },
    Query {
        id: "q4",
        title: "Most popular category per age group",
        template: "sql/q4_popular_category_by_age_group.sql",
        reads_results_of: &[],
    },
    Query {
        id: "q5",
        title: "Median follower count per age group",
        template: "sql/q5_median_followers_by_age_group.sql",
        reads_results_of: &[],
    },
    Query { id: "q6", title: "Users joined per year (2015-2020)", template: "sql/q6_users_joined_by_year.sql", reads_results_of: &[] },
    Query {
        id: "q7",
        title: "Median follower count by joining year (2015-2020)",
        template: "sql/q7_median_followers_by_join_year.sql",
        reads_results_of: &[],
    },
    Query {
        id: "q8",
        title: "Median follower count by age group and joining year (2015-2020)",
        template: "sql/q8_median_followers_by_age_group_and_join_year.sql",
        reads_results_of: &[],
    },
];

/// The embedded templates, ready to render.
pub struct Templates {
    tera: Tera,
}

impl Templates {
    pub fn new() -> Self {
        let mut tera = Tera::default();
        // Plain-text outputs: HTML escaping would corrupt SQL and properties.
        tera.autoescape_on(vec![]);
        // Deployment files are addressed without their `files/` directory.
        tera.add_raw_templates(TEMPLATES.iter().map(|(name, text)| (name.strip_prefix("files/").unwrap_or(name), *text)))
            .expect("embedded templates parse (checked by tests)");
        tera.register_filter("py_sql", py_sql);
        Self { tera }
    }

    /// Names of all embedded templates.
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        TEMPLATES.iter().map(|(name, _)| name.strip_prefix("files/").unwrap_or(name))
    }

    /// Render one SQL template for an engine.
    pub fn sql(&self, template: &str, engine: Engine) -> Result<String, TemplateError> {
        self.render(template, &engine.context())
    }

    /// Render any template with the given context.
    pub fn render(&self, template: &str, ctx: &Context) -> Result<String, TemplateError> {
        if !self.names().any(|n| n == template) {
            let known = self.names().collect::<Vec<_>>().join(", ");
            return Err(TemplateError::Unknown(template.to_string(), known));
        }
        self.tera.render(template, ctx).map_err(|e| TemplateError::Render { name: template.to_string(), detail: error_chain(&e) })
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// SQL as a Python string literal: triple-quoted so the notebook stays
/// readable. SQL that a triple-quoted string cannot hold is refused rather
/// than silently altered.
fn py_sql(value: &tera::Value, _: &std::collections::HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let sql = value.as_str().ok_or_else(|| tera::Error::msg("py_sql expects a string"))?;
    if sql.contains("\"\"\"") || sql.contains('\\') || sql.ends_with('"') {
        return Err(tera::Error::msg("this SQL cannot be a triple-quoted Python string (it holds \"\"\", a backslash or ends in a quote)"));
    }
    Ok(tera::Value::String(format!("\"\"\"\n{}\n\"\"\"", sql.trim())))
}

/// Tera puts the useful part (e.g. the missing variable) in the source chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sql_template_renders_for_both_engines() {
        let t = Templates::new();
        for name in t.names().filter(|n| n.starts_with("sql/") && !n.ends_with("macros.sql")) {
            for engine in [Engine::DataFusion, Engine::Spark] {
                let sql = t.sql(name, engine).unwrap();
                assert!(sql.to_uppercase().contains("SELECT"), "{name} for {engine:?}");
                assert!(!sql.contains("{{") && !sql.contains("{%"), "{name} left Tera syntax");
            }
        }
    }

    #[test]
    fn dialects_differ_only_where_they_must() {
        let t = Templates::new();
        let df = t.sql("sql/clean_geo.sql", Engine::DataFusion).unwrap();
        let spark = t.sql("sql/clean_geo.sql", Engine::Spark).unwrap();
        assert!(df.contains("make_array(") && !df.contains('`'));
        assert!(spark.contains("array(") && !spark.contains("make_array") && !spark.contains('"'));
    }

    #[test]
    fn unknown_template_names_the_known_ones() {
        let err = Templates::new().sql("sql/nope.sql", Engine::Spark).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("sql/nope.sql") && msg.contains("sql/clean_pin.sql"), "{msg}");
    }

    #[test]
    fn every_query_and_cleaning_step_names_an_embedded_template() {
        let t = Templates::new();
        let names: Vec<_> = t.names().collect();
        for q in QUERIES {
            assert!(names.contains(&q.template), "{}", q.id);
        }
        for c in CLEANING {
            assert!(names.contains(&c.template) && names.contains(&c.summary_template), "{}", c.kind);
        }
    }

    #[test]
    fn placeholders_name_pin_text_columns_and_hold_no_quotes() {
        let text: Vec<_> = pin_nulled_columns().iter().map(|c| c.column).collect();
        for (column, values) in PIN_PLACEHOLDERS {
            assert!(text.contains(&column), "{column} is not a pin text column");
            assert!(values.iter().all(|v| !v.contains('\'') && !v.is_empty()), "{column}: a value the SQL literal cannot hold");
        }
        let sql = Templates::new().sql("sql/clean_pin.sql", Engine::Spark).unwrap();
        assert!(sql.contains("'No description available Story format', 'No description available', 'Untitled'"), "{sql}");
    }
}
