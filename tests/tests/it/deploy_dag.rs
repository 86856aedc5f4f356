//! `deploy-dag` against moto's S3: the rendered DAG and requirements.txt land
//! where MWAA reads them, byte for byte.

use crate::common;

use templates::config::PipelineConfig;
use templates::render;

#[tokio::test]
async fn dag_and_requirements_land_in_the_dags_bucket() {
    let client = common::s3_client().await;
    let bucket = format!("{}-dags", common::fresh_names().uid());
    aws_setup::s3::ensure_bucket(&client, &bucket).await.unwrap();
    // As `provision` makes it: MWAA reads requirements by object version.
    client
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder().status(aws_sdk_s3::types::BucketVersioningStatus::Enabled).build(),
        )
        .send()
        .await
        .unwrap();

    let mut config = PipelineConfig::for_uid("0e2a0bfcc015");
    config.set("databricks.notebook_path", "/nb").unwrap();
    let files = render::dag_files(&templates::Templates::new(), &config).unwrap();
    let get = |p: &str| files.iter().find(|f| f.path == p).unwrap().contents.clone();
    let (dag, reqs) = (get(&render::dag_path("0e2a0bfcc015")), get(render::REQUIREMENTS_PATH));

    let (uploaded, first) = infra::dags::deploy(&client, &bucket, "0e2a0bfcc015", &dag, &reqs).await.unwrap();
    assert_eq!(uploaded.key, "dags/0e2a0bfcc015_dag.py");
    assert!(first.uploaded && first.version_id.is_some(), "{first:?}");
    for (key, want) in [("dags/0e2a0bfcc015_dag.py", &dag), ("requirements.txt", &reqs)] {
        let got = client.get_object().bucket(&bucket).key(key).send().await.unwrap();
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(std::str::from_utf8(&body).unwrap(), want.as_str(), "{key}");
    }
    // A second deploy overwrites the DAG in place; unchanged requirements
    // keep their version, so the environment is not updated for nothing.
    let (_, again) = infra::dags::deploy(&client, &bucket, "0e2a0bfcc015", &dag, &reqs).await.unwrap();
    assert_eq!((again.uploaded, &again.version_id), (false, &first.version_id));
    let mut listed = aws_setup::s3::list_keys(&client, &bucket, "").await.unwrap();
    listed.sort();
    assert_eq!(listed, ["dags/0e2a0bfcc015_dag.py", "requirements.txt"]);
    // Changed requirements are a new version, the one MWAA must be told.
    let (_, changed) =
        infra::dags::deploy(&client, &bucket, "0e2a0bfcc015", &dag, &format!("{reqs}apache-airflow-providers-amazon\n")).await.unwrap();
    assert!(changed.uploaded && changed.version_id.is_some() && changed.version_id != first.version_id, "{changed:?}");
}

#[tokio::test]
async fn a_missing_bucket_is_named_in_the_error() {
    let client = common::s3_client().await;
    let bucket = format!("{}-absent", common::fresh_names().uid());
    let err = infra::dags::deploy(&client, &bucket, "u", "x", "y").await.unwrap_err().to_string();
    assert!(err.contains(&bucket) && err.contains("dags/u_dag.py"), "{err}");
}
