//! Rendering the deployment's files (`cargo xtask render`): configs,
//! user-data, the Airflow DAG, the notebooks. Deterministic: the same config
//! gives byte-identical files.

use serde::Serialize;
use serde_json::Value;
use tera::Context;

use crate::config::PipelineConfig;
use crate::{CLEANING, Engine, QUERIES, TemplateError, Templates};

/// One file to write: where (relative to the output directory) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub contents: String,
}

/// An output: its template and its path, which may depend on the uid.
struct Output {
    template: &'static str,
    path: fn(&str) -> String,
    /// Outputs whose contents this one embeds.
    embeds: &'static [&'static str],
}

/// Everything `render` writes, in an order where a file only embeds files
/// rendered before it (user-data embeds both properties files).
const OUTPUTS: [Output; 9] = [
    Output { template: "kafka/client.properties", path: |_| "kafka/client.properties".into(), embeds: &[] },
    Output { template: "kafka/kafka-rest.properties", path: |_| "kafka/kafka-rest.properties".into(), embeds: &[] },
    Output { template: "kafka/s3-sink-connector.properties", path: |_| "kafka/s3-sink-connector.properties".into(), embeds: &[] },
    Output {
        template: "ec2/user-data.sh",
        path: |_| "ec2/user-data.sh".into(),
        embeds: &["kafka/client.properties", "kafka/kafka-rest.properties"],
    },
    Output { template: "airflow/dag.py", path: |uid| format!("airflow/dags/{uid}_dag.py"), embeds: &[] },
    Output { template: "airflow/requirements.txt", path: |_| REQUIREMENTS_PATH.into(), embeds: &[] },
    Output { template: "airflow/local_dag.py", path: |uid| format!("airflow/local/{uid}_local_dag.py"), embeds: &[] },
    Output { template: "databricks/batch_notebook.py", path: |_| "databricks/batch_notebook.py".into(), embeds: &[] },
    Output { template: "databricks/stream_notebook.py", path: |_| "databricks/stream_notebook.py".into(), embeds: &[] },
];

/// Path, relative to the output directory, of MWAA's requirements.txt.
pub const REQUIREMENTS_PATH: &str = "airflow/requirements.txt";

/// Path, relative to the output directory, of the rendered DAG.
pub fn dag_path(uid: &str) -> String {
    (OUTPUTS[4].path)(uid)
}

/// Path, relative to the output directory, of the local Airflow's DAG.
pub fn local_dag_path(uid: &str) -> String {
    (OUTPUTS[6].path)(uid)
}

#[derive(Serialize)]
struct RawSchema {
    kind: &'static str,
    ddl: String,
    /// The key column: a record without it is not a row of its kind.
    key: &'static str,
}

#[derive(Serialize)]
struct CleaningSql {
    kind: &'static str,
    table: &'static str,
    sql: String,
}

#[derive(Serialize)]
struct QuerySql {
    id: &'static str,
    title: &'static str,
    sql: String,
}

/// Render every output, or report every missing variable of every file at
/// once (not just the first), each with the file that needs it.
pub fn render_all(templates: &Templates, config: &PipelineConfig) -> Result<Vec<RenderedFile>, TemplateError> {
    render_outputs(templates, config, &OUTPUTS)
}

/// What [`render_available`] could render, and what it could not.
#[derive(Debug)]
pub struct PartialRendering {
    pub files: Vec<RenderedFile>,
    /// (file, variable) of each file left out; empty when all rendered.
    pub missing: Vec<(String, String)>,
}

/// Render every output whose variables are all known; name the rest with
/// what they miss. The batch notebook, say, needs only the uid, while the
/// DAG needs a Databricks cluster: a user without a deployment still gets
/// the files that need none.
pub fn render_available(templates: &Templates, config: &PipelineConfig) -> Result<PartialRendering, TemplateError> {
    render_each(templates, config, &OUTPUTS)
}

/// Render `outputs` in order, each able to embed the ones before it, or
/// fail naming every missing variable.
fn render_outputs(templates: &Templates, config: &PipelineConfig, outputs: &[Output]) -> Result<Vec<RenderedFile>, TemplateError> {
    let rendering = render_each(templates, config, outputs)?;
    if !rendering.missing.is_empty() {
        return Err(TemplateError::MissingVariables(rendering.missing));
    }
    Ok(rendering.files)
}

fn render_each(templates: &Templates, config: &PipelineConfig, outputs: &[Output]) -> Result<PartialRendering, TemplateError> {
    let mut ctx = base_context(templates, config)?;
    let mut files = Vec::new();
    let mut missing = Vec::new();
    let mut left_out: Vec<&str> = Vec::new();
    for out in outputs {
        match render_collecting_missing(templates, out.template, &ctx) {
            // A file embedding one left out would hold a gap: left out too.
            // Its own missing variables are named; the embedded file's are
            // named once, with that file.
            Ok(_) if out.embeds.iter().any(|e| left_out.contains(e)) => left_out.push(out.template),
            Ok(contents) => {
                // Later outputs embed earlier ones by template name.
                ctx.insert(embed_key(out.template), contents.trim_end());
                files.push(RenderedFile { path: (out.path)(&config.uid), contents });
            }
            Err(Missing::Vars(vars)) => {
                // Dependents would only repeat this file's missing variables.
                ctx.insert(embed_key(out.template), "");
                left_out.push(out.template);
                missing.extend(vars.into_iter().map(|v| (out.template.to_string(), v)));
            }
            Err(Missing::Other(e)) => return Err(e),
        }
    }
    Ok(PartialRendering { files, missing })
}

/// What provisioning sends to AWS: the connector configuration and the
/// client machine's user-data (which embeds both properties files), without
/// needing the variables of the DAG and notebooks.
pub struct ProvisioningFiles {
    pub connector_properties: String,
    pub user_data: String,
}

pub fn provisioning_files(templates: &Templates, config: &PipelineConfig) -> Result<ProvisioningFiles, TemplateError> {
    // The first four outputs: both properties files, the connector, user-data.
    let files = render_outputs(templates, config, &OUTPUTS[..4])?;
    let [_, _, connector, user_data]: [RenderedFile; 4] = files.try_into().expect("four outputs");
    Ok(ProvisioningFiles { connector_properties: connector.contents, user_data: user_data.contents })
}

/// The files `deploy-dag` uploads: the DAG and MWAA's requirements.txt,
/// rendered without needing the variables of the other files.
pub fn dag_files(templates: &Templates, config: &PipelineConfig) -> Result<Vec<RenderedFile>, TemplateError> {
    ["airflow/dag.py", "airflow/requirements.txt"]
        .into_iter()
        .zip([dag_path(&config.uid), REQUIREMENTS_PATH.to_string()])
        .map(|(template, path)| Ok(RenderedFile { path, contents: render_one(templates, config, template)? }))
        .collect()
}

/// MWAA's requirements.txt alone: provisioning uploads it before the
/// environment exists, when the DAG may not render yet.
pub fn mwaa_requirements(templates: &Templates, config: &PipelineConfig) -> Result<String, TemplateError> {
    render_one(templates, config, "airflow/requirements.txt")
}

/// Fail if any rendered file contains one of the given secret values (the
/// process's AWS secret key, say): configs are shared, secrets are not.
pub fn refuse_secrets(files: &[RenderedFile], secrets: &[String]) -> Result<(), TemplateError> {
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        if let Some(f) = files.iter().find(|f| f.contents.contains(secret.as_str())) {
            // Name the file, never the value.
            return Err(TemplateError::Config(format!(
                "{} would contain a secret from the environment; remove it from pipeline.toml / --set",
                f.path
            )));
        }
    }
    Ok(())
}

/// Render one output (e.g. the batch notebook for a local run).
pub fn render_one(templates: &Templates, config: &PipelineConfig, template: &str) -> Result<String, TemplateError> {
    let ctx = base_context(templates, config)?;
    match render_collecting_missing(templates, template, &ctx) {
        Ok(s) => Ok(s),
        Err(Missing::Vars(vars)) => Err(TemplateError::MissingVariables(vars.into_iter().map(|v| (template.to_string(), v)).collect())),
        Err(Missing::Other(e)) => Err(e),
    }
}

/// `kafka/client.properties` is available to later templates as `client_properties`.
fn embed_key(template: &str) -> String {
    let file = template.rsplit('/').next().unwrap_or(template);
    file.split('.').next().unwrap_or(file).replace('-', "_") + "_properties"
}

fn base_context(templates: &Templates, config: &PipelineConfig) -> Result<Context, TemplateError> {
    let mut ctx = Context::from_value(config.to_context()).expect("the config is a JSON object");
    let raw: Vec<RawSchema> = CLEANING
        .iter()
        .map(|s| RawSchema {
            kind: s.kind,
            ddl: spark_ddl(s.kind),
            key: s.kind.parse::<contract::Kind>().expect("the cleaning steps name the three kinds").key_column(),
        })
        .collect();
    ctx.insert("raw_schemas", &raw);
    let cleaning = CLEANING
        .iter()
        .map(|s| Ok(CleaningSql { kind: s.kind, table: s.table, sql: templates.sql(s.template, Engine::Spark)? }))
        .collect::<Result<Vec<_>, TemplateError>>()?;
    ctx.insert("cleaning", &cleaning);
    let queries = QUERIES
        .iter()
        .map(|q| Ok(QuerySql { id: q.id, title: q.title, sql: templates.sql(q.template, Engine::Spark)? }))
        .collect::<Result<Vec<_>, TemplateError>>()?;
    ctx.insert("queries", &queries);
    Ok(ctx)
}

/// Spark's DDL for a raw table, e.g. "`index` BIGINT, `title` STRING".
fn spark_ddl(kind: &str) -> String {
    let kind: contract::Kind = kind.parse().expect("the cleaning steps name the three kinds");
    contract::raw_columns(kind).iter().map(|(name, ty)| format!("`{name}` {}", ty.spark())).collect::<Vec<_>>().join(", ")
}

enum Missing {
    Vars(Vec<String>),
    Other(TemplateError),
}

/// Render; on a missing variable, note it, stand in a placeholder and go on,
/// so that one run names all of a file's missing variables.
fn render_collecting_missing(templates: &Templates, template: &str, ctx: &Context) -> Result<String, Missing> {
    let mut ctx = ctx.clone();
    let mut missing = Vec::new();
    loop {
        match templates.render(template, &ctx) {
            Ok(s) if missing.is_empty() => return Ok(s),
            Ok(_) => return Err(Missing::Vars(missing)),
            Err(TemplateError::Render { detail, .. }) if missing_variable(&detail).is_some() => {
                let var = missing_variable(&detail).expect("checked");
                if missing.contains(&var) {
                    // Stand-in did not take (e.g. used in a way a string cannot satisfy).
                    return Err(Missing::Vars(missing));
                }
                insert_dotted(&mut ctx, &var, Value::String(String::new()));
                missing.push(var);
            }
            Err(e) => return Err(Missing::Other(e)),
        }
    }
}

/// Tera says: "Variable `kafka.client_role_arn` not found in context while rendering '...'".
fn missing_variable(detail: &str) -> Option<String> {
    let rest = detail.split("Variable `").nth(1)?;
    let (name, after) = rest.split_once('`')?;
    after.trim_start().starts_with("not found in context").then(|| name.to_string())
}

fn insert_dotted(ctx: &mut Context, path: &str, value: Value) {
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    let mut root = ctx.get(head).cloned().unwrap_or(Value::Null);
    set_path(&mut root, rest, value);
    ctx.insert(head, &root);
}

fn set_path(slot: &mut Value, path: &str, value: Value) {
    if path.is_empty() {
        *slot = value;
        return;
    }
    if !slot.is_object() {
        *slot = Value::Object(Default::default());
    }
    let (key, rest) = path.split_once('.').unwrap_or((path, ""));
    let child = slot.as_object_mut().expect("made an object above").entry(key).or_insert(Value::Null);
    set_path(child, rest, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_config() -> PipelineConfig {
        let mut c = PipelineConfig::for_uid("0e2a0bfcc015");
        for (k, v) in [
            ("kafka.client_role_arn", "arn:aws:iam::123456789012:role/0e2a0bfcc015-ec2-access-role"),
            ("kafka.bootstrap_servers", "b-1.msk.example:9098,b-2.msk.example:9098"),
            ("databricks.cluster_id", "1108-162752-8okw8dgg"),
            ("databricks.notebook_path", "/Workspace/Users/me/batch_notebook"),
            ("ec2.pipeline_binary_sha256", "5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"),
        ] {
            c.set(k, v).unwrap();
        }
        c
    }

    fn file<'a>(files: &'a [RenderedFile], path: &str) -> &'a str {
        &files.iter().find(|f| f.path == path).unwrap_or_else(|| panic!("no {path}")).contents
    }

    /// key=value lines, comments skipped.
    fn properties(text: &str) -> Vec<(String, String)> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    #[test]
    fn rendering_is_deterministic() {
        let t = Templates::new();
        assert_eq!(render_all(&t, &full_config()).unwrap(), render_all(&t, &full_config()).unwrap());
    }

    #[test]
    fn every_missing_variable_is_named_with_its_file() {
        let err = render_all(&Templates::new(), &PipelineConfig::for_uid("abc")).unwrap_err();
        let TemplateError::MissingVariables(missing) = &err else { panic!("{err}") };
        let has = |file: &str, var: &str| missing.iter().any(|(f, v)| f == file && v == var);
        assert!(has("kafka/client.properties", "kafka.client_role_arn"), "{err}");
        assert!(has("kafka/kafka-rest.properties", "kafka.bootstrap_servers"), "{err}");
        // A job cluster by default: the DAG needs the notebook, no cluster.
        assert!(has("airflow/dag.py", "databricks.notebook_path") && !has("airflow/dag.py", "databricks.cluster_id"), "{err}");
        // user-data embeds the properties files: their gaps are not repeated,
        // only what it uses itself: the binary it installs (its key derives
        // from the SHA-256 and is not named again) and the cluster.
        let user_data: Vec<_> = missing.iter().filter(|(f, _)| f == "ec2/user-data.sh").map(|(_, v)| v.as_str()).collect();
        assert_eq!(user_data, ["ec2.pipeline_binary_sha256", "kafka.bootstrap_servers"], "{err}");
        assert_eq!(missing.len(), 6, "{err}");
    }

    #[test]
    fn without_a_deployment_the_files_needing_none_render_and_the_rest_are_named() {
        let rendering = render_available(&Templates::new(), &PipelineConfig::for_uid("abc")).unwrap();
        let paths: Vec<&str> = rendering.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "kafka/s3-sink-connector.properties",
                "airflow/requirements.txt",
                "airflow/local/abc_local_dag.py",
                "databricks/batch_notebook.py",
                "databricks/stream_notebook.py"
            ]
        );
        // The same gaps render_all reports, each file once with its own.
        let TemplateError::MissingVariables(all) = render_all(&Templates::new(), &PipelineConfig::for_uid("abc")).unwrap_err() else {
            panic!()
        };
        assert_eq!(rendering.missing, all);
        // user-data is left out although the embedded files' gaps are theirs.
        assert!(!paths.contains(&"ec2/user-data.sh"));
        let full = render_available(&Templates::new(), &full_config()).unwrap();
        assert!(full.missing.is_empty() && full.files.len() == OUTPUTS.len());
    }

    #[test]
    fn connector_config_is_the_original_one() {
        let files = render_all(&Templates::new(), &full_config()).unwrap();
        let props = properties(file(&files, "kafka/s3-sink-connector.properties"));
        let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("connector.class"), Some("io.confluent.connect.s3.S3SinkConnector"));
        assert_eq!(get("flush.size"), Some("1"));
        assert_eq!(get("tasks.max"), Some("3"));
        assert_eq!(get("topics.regex"), Some("0e2a0bfcc015.*"));
        assert_eq!(get("s3.bucket.name"), Some("user-0e2a0bfcc015-bucket"));
        assert_eq!(get("value.converter.schemas.enable"), Some("false"));
        assert_eq!(props.len(), 13, "{props:?}");
    }

    #[test]
    fn rest_proxy_properties_carry_the_client_settings_with_the_prefix() {
        let files = render_all(&Templates::new(), &full_config()).unwrap();
        let client = properties(file(&files, "kafka/client.properties"));
        let rest = properties(file(&files, "kafka/kafka-rest.properties"));
        assert_eq!(client.len(), 4);
        for (k, v) in &client {
            assert!(rest.contains(&(format!("client.{k}"), v.clone())), "{k}");
        }
        assert!(client.iter().any(|(_, v)| v.contains("awsRoleArn=\"arn:aws:iam::123456789012:role/0e2a0bfcc015-ec2-access-role\";")));
        assert!(rest.contains(&("bootstrap.servers".into(), "b-1.msk.example:9098,b-2.msk.example:9098".into())));
        assert!(rest.contains(&("listeners".into(), "http://0.0.0.0:8082".into())));
        // The original data path's user-data writes both files verbatim.
        let mut original = full_config();
        original.set("ec2.data_path", "original").unwrap();
        let files = render_all(&Templates::new(), &original).unwrap();
        let user_data = file(&files, "ec2/user-data.sh");
        assert!(user_data.contains(file(&files, "kafka/kafka-rest.properties").trim_end()));
        assert!(user_data.contains(file(&files, "kafka/client.properties").trim_end()));
        assert!(user_data.contains("kafka-rest.service") && !user_data.contains("pipeline-ingest"));
        assert!(!user_data.contains("{{") && !user_data.contains("{%"));
    }

    /// The default data path: our binary, checked by its SHA-256, and its
    /// units with MSK IAM; no JVM, no proxy.
    #[test]
    fn the_pipeline_data_path_installs_our_binary_and_units() {
        let mut config = full_config();
        let files = render_all(&Templates::new(), &config).unwrap();
        let user_data = file(&files, "ec2/user-data.sh");
        let sha = config.ec2.pipeline_binary_sha256.clone().unwrap();
        let key = crate::config::Ec2Vars::binary_key(&sha);
        assert!(user_data.contains(&format!("s3://$BUCKET/{key}")), "{user_data}");
        assert!(user_data.contains(&format!("BINARY_SHA256=\"{sha}\"")) && user_data.contains("sha256sum -c"));
        assert!(user_data.contains("PIPELINE_KAFKA_AUTH=msk-iam"));
        assert!(user_data.contains("KAFKA_BOOTSTRAP_SERVERS=b-1.msk.example:9098,b-2.msk.example:9098"));
        assert!(user_data.contains("--require-header X-Pipeline-Gateway-Secret"));
        assert!(user_data.contains("systemctl enable --now pipeline-topics.service pipeline-ingest.service pipeline-sink.service\n"));
        assert!(!user_data.contains("kafka-rest") && !user_data.contains("java"), "{user_data}");
        assert!(!user_data.contains("{{") && !user_data.contains("{%"));
        config.set("ec2.stream_worker", "true").unwrap();
        let files = render_all(&Templates::new(), &config).unwrap();
        assert!(file(&files, "ec2/user-data.sh").contains("pipeline-sink.service pipeline-stream.service"));
    }

    #[test]
    fn notebooks_hold_the_spark_sql_of_every_step_and_query() {
        let t = Templates::new();
        let files = render_all(&t, &full_config()).unwrap();
        let batch = file(&files, "databricks/batch_notebook.py");
        assert!(batch.starts_with("# Databricks notebook source\n"));
        for q in QUERIES {
            assert!(batch.contains(t.sql(q.template, Engine::Spark).unwrap().trim()), "{}", q.id);
        }
        let stream = file(&files, "databricks/stream_notebook.py");
        for c in CLEANING {
            let sql = t.sql(c.template, Engine::Spark).unwrap();
            assert!(batch.contains(sql.trim()) && stream.contains(sql.trim()), "{}", c.table);
        }
        assert!(stream.contains("streaming-{UID}-{kind}") && stream.contains("\"initialPosition\", \"earliest\""));
    }

    #[test]
    fn sql_that_python_cannot_hold_is_refused() {
        let mut tera = tera::Tera::default();
        tera.register_filter("py_sql", crate::py_sql);
        tera.add_raw_template("t", "{{ s | py_sql }}").unwrap();
        let render = |s: &str| {
            let mut ctx = Context::new();
            ctx.insert("s", s);
            tera.render("t", &ctx)
        };
        assert_eq!(render("SELECT 1").unwrap(), "\"\"\"\nSELECT 1\n\"\"\"");
        assert!(render("SELECT '\\\\d'").is_err());
        assert!(render("SELECT \"\"\"").is_err());
    }

    #[test]
    fn secrets_in_output_are_refused_without_being_printed() {
        let mut c = full_config();
        c.set("airflow.owner", "AKIA-very-secret-value").unwrap();
        let files = render_all(&Templates::new(), &c).unwrap();
        let err = refuse_secrets(&files, &["AKIA-very-secret-value".into()]).unwrap_err().to_string();
        assert!(err.contains("airflow/dags/0e2a0bfcc015_dag.py") && !err.contains("very-secret"), "{err}");
        assert!(refuse_secrets(&files, &["not-in-any-file".into()]).is_ok());
    }

    #[test]
    fn config_errors_name_the_problem() {
        let err = PipelineConfig::from_toml("uid = \"a\"\n[kafka]\nbootstrap = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("bootstrap"), "{err}");
        let err = PipelineConfig::for_uid("a").set("kafka.nope", "x").unwrap_err().to_string();
        assert!(err.contains("kafka.nope"), "{err}");
        let mut c = PipelineConfig::for_uid("a");
        c.set("sink.flush_size", "500").unwrap();
        assert_eq!(c.sink.flush_size, 500);
        let err = c.set("airflow.start_date", "tomorrow").unwrap_err().to_string();
        assert!(err.contains("YYYY-MM-DD"), "{err}");
        let err = PipelineConfig::from_toml("uid = \"Not Valid\"").unwrap_err().to_string();
        assert!(err.contains("Not Valid"), "{err}");
    }
}
