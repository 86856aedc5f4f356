//! What Databricks' serverless and standard (shared, Unity Catalog) compute
//! refuse in a notebook, as Databricks documents it: only Spark Connect
//! APIs (no RDDs, no SparkContext), no caching, no `input_file_name()`
//! (not available on Unity Catalog, gone from 17.3 LTS), and of the Spark
//! confs only a short list. The notebooks are checked against it by
//! `#[test]`, so a new use of any of these fails the build, not a user's
//! first run on the real workspace.

/// Spark confs a notebook may set on serverless compute (Databricks'
/// "supported Spark configuration parameters"); anything else is refused.
pub const SERVERLESS_CONFS: [&str; 6] = [
    "spark.sql.ansi.enabled",
    "spark.sql.session.timeZone",
    "spark.sql.legacy.timeParserPolicy",
    "spark.sql.shuffle.partitions",
    "spark.sql.files.maxPartitionBytes",
    "spark.databricks.execution.timeout",
];

/// Code that serverless or standard compute refuses, with what to write
/// instead.
const REFUSED: [(&str, &str); 11] = [
    ("input_file_name(", "the file source's `_metadata.file_path` column"),
    (".rdd", "DataFrame functions (RDDs are not Spark Connect)"),
    ("sparkContext", "the SparkSession (no SparkContext on Spark Connect)"),
    ("SparkContext", "the SparkSession (no SparkContext on Spark Connect)"),
    (".toJSON(", "`to_json(struct(...))` on the DataFrame (toJSON returns an RDD)"),
    (".cache(", "nothing: serverless compute refuses caching"),
    (".persist(", "nothing: serverless compute refuses caching"),
    ("CACHE TABLE", "nothing: serverless compute refuses caching"),
    (".parallelize(", "`spark.createDataFrame`"),
    ("setCheckpointDir", "a DataFrame checkpoint location option"),
    (".broadcast(", "the `broadcast()` join hint of pyspark.sql.functions"),
];

/// One use of something shared compute refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 1-based line of the notebook.
    pub line: usize,
    pub found: String,
    pub instead: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: `{}` is refused on serverless/standard compute; use {}", self.line, self.found, self.instead)
    }
}

/// Every use in `python` (a notebook's source) of an API or Spark conf that
/// serverless or standard compute refuses. Comments are skipped; code is
/// matched as text, which is enough for the notebooks we render.
pub fn shared_compute_refusals(python: &str) -> Vec<Refusal> {
    let mut found = Vec::new();
    for (i, line) in python.lines().enumerate() {
        let code = strip_comment(line);
        for (pattern, instead) in REFUSED {
            if code.contains(pattern) {
                found.push(Refusal { line: i + 1, found: pattern.to_string(), instead });
            }
        }
        // conf.set("<key>", ...) and SET <key> = ... in SQL.
        for key in set_conf_keys(code) {
            if !SERVERLESS_CONFS.contains(&key.as_str()) {
                found.push(Refusal {
                    line: i + 1,
                    found: format!("conf {key}"),
                    instead: "one of the confs serverless accepts, or a per-call option (e.g. to_json's)",
                });
            }
        }
    }
    found
}

/// The line without a trailing `#` comment (a `#` inside a string literal
/// ends the scan early, which only hides code, never invents it).
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return &line[..i],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    line
}

fn set_conf_keys(code: &str) -> Vec<String> {
    let mut keys = Vec::new();
    for marker in ["conf.set(\"", "conf.set('", "SET "] {
        let mut rest = code;
        while let Some(at) = rest.find(marker) {
            rest = &rest[at + marker.len()..];
            let key: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_').collect();
            if key.starts_with("spark.") {
                keys.push(key);
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Templates;
    use crate::config::PipelineConfig;
    use crate::render::render_one;

    #[test]
    fn the_notebooks_use_only_what_serverless_and_standard_compute_accept() {
        let config = PipelineConfig::for_uid("abc-1");
        for notebook in ["databricks/batch_notebook.py", "databricks/stream_notebook.py"] {
            let text = render_one(&Templates::new(), &config, notebook).unwrap();
            let refused = shared_compute_refusals(&text);
            assert!(refused.is_empty(), "{notebook}:\n{}", refused.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n"));
        }
    }

    #[test]
    fn each_refused_api_and_conf_is_caught_and_comments_are_not() {
        let code = "\
df = spark.read.json(p).withColumn(\"f\", input_file_name())
rows = df.rdd.map(lambda r: r)
for line in df.toJSON().collect():
    pass
df.cache()
spark.conf.set(\"spark.sql.jsonGenerator.ignoreNullFields\", \"false\")
spark.conf.set(\"spark.sql.session.timeZone\", \"UTC\")
spark.sql(\"SET spark.sql.adaptive.enabled = false\")
# df.cache() in a comment is fine, and so is input_file_name() here
x = \"a # in a string\"; df.persist()
";
        let refused = shared_compute_refusals(code);
        let lines: Vec<(usize, &str)> = refused.iter().map(|r| (r.line, r.found.as_str())).collect();
        assert_eq!(
            lines,
            [
                (1, "input_file_name("),
                (2, ".rdd"),
                (3, ".toJSON("),
                (5, ".cache("),
                (6, "conf spark.sql.jsonGenerator.ignoreNullFields"),
                (8, "conf spark.sql.adaptive.enabled"),
                (10, ".persist("),
            ]
        );
        assert!(refused[0].to_string().contains("_metadata.file_path"), "{}", refused[0]);
    }
}
