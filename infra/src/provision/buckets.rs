//! The sink bucket (the connector's output, SPEC 3.3) and MWAA's dags
//! bucket (versioned and private, as MWAA requires).

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Delete, ObjectIdentifier, PublicAccessBlockConfiguration,
    Tag, Tagging, VersioningConfiguration,
};

use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::Buckets;

/// Whether a bucket is there and whether it carries this stack's tag.
enum Ownership {
    Missing,
    Ours,
    Foreign,
}

async fn ownership(p: &Provisioner, bucket: &str) -> Result<Ownership> {
    let s3 = &p.clients.s3;
    if let Err(e) = s3.head_bucket().bucket(bucket).send().await {
        let missing = e.as_service_error().is_some_and(|s| s.is_not_found());
        return if missing {
            Ok(Ownership::Missing)
        } else {
            Err(ProvisionError::aws("HeadBucket", format!("s3://{bucket} (a bucket of another account has this name?)"))(e))
        };
    }
    match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(t) => {
            let ours = t.tag_set().iter().any(|t| t.key() == STACK_TAG && t.value() == p.uid());
            Ok(if ours { Ownership::Ours } else { Ownership::Foreign })
        }
        Err(e) if e.code() == Some("NoSuchTagSet") => Ok(Ownership::Foreign),
        Err(e) => Err(ProvisionError::aws("GetBucketTagging", bucket.to_string())(e)),
    }
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    let sink = p.names.sink_bucket.clone();
    let dags = p.names.dags_bucket.clone();
    ensure(p, &sink, false).await?;
    ensure(p, &dags, true).await
}

async fn ensure(p: &mut Provisioner, bucket: &str, for_mwaa: bool) -> Result<()> {
    let resource = format!("s3 bucket {bucket}");
    match ownership(p, bucket).await? {
        Ownership::Foreign => {
            p.record(C, resource, Action::Foreign);
            return Ok(());
        }
        Ownership::Ours => {
            if for_mwaa && !versioned(p, bucket).await? {
                p.record(C, resource, Action::Update("versioning off; MWAA needs it on".into()));
                if !p.dry_run() {
                    mwaa_settings(p, bucket).await?;
                }
            } else {
                p.record(C, resource, Action::Exists);
            }
            return Ok(());
        }
        Ownership::Missing => p.record(C, resource, Action::Create),
    }
    if p.dry_run() {
        return Ok(());
    }
    let s3 = &p.clients.s3;
    let mut req = s3.create_bucket().bucket(bucket);
    // us-east-1 is the one region that refuses an explicit location.
    if p.region() != "us-east-1" {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(p.region())).build(),
        );
    }
    req.send().await.map_err(ProvisionError::aws("CreateBucket", bucket.to_string()))?;
    let (k, v) = p.stack_tag();
    let tag = Tag::builder().key(k).value(v).build().expect("key and value set");
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(Tagging::builder().tag_set(tag).build().expect("tag set"))
        .send()
        .await
        .map_err(ProvisionError::aws("PutBucketTagging", bucket.to_string()))?;
    if for_mwaa {
        mwaa_settings(p, bucket).await?;
    }
    Ok(())
}

async fn versioned(p: &Provisioner, bucket: &str) -> Result<bool> {
    match p.clients.s3.get_bucket_versioning().bucket(bucket).send().await {
        Ok(v) => Ok(v.status() == Some(&BucketVersioningStatus::Enabled)),
        Err(e) => {
            // moto 5.2 wraps the (correct) answer in a wrong root element,
            // which the SDK refuses to parse; the status inside is still
            // readable from the raw 200 response.
            let raw = e
                .raw_response()
                .filter(|r| r.status().is_success())
                .and_then(|r| r.body().bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned());
            match raw {
                Some(body) if body.contains("<GetBucketVersioningResponse") => Ok(body.contains("<Status>Enabled</Status>")),
                _ => Err(ProvisionError::aws("GetBucketVersioning", bucket.to_string())(e)),
            }
        }
    }
}

/// MWAA requires a versioned bucket with public access blocked.
async fn mwaa_settings(p: &Provisioner, bucket: &str) -> Result<()> {
    let s3 = &p.clients.s3;
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .map_err(ProvisionError::aws("PutBucketVersioning", bucket.to_string()))?;
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .block_public_policy(true)
                .ignore_public_acls(true)
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .map_err(ProvisionError::aws("PutPublicAccessBlock", bucket.to_string()))?;
    Ok(())
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for bucket in [p.names.sink_bucket.clone(), p.names.dags_bucket.clone()] {
        if let Ownership::Ours = ownership(p, &bucket).await? {
            out.push(Found { component: C, kind: "s3 bucket", id: bucket, state: None });
        }
    }
    Ok(out)
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    for f in found {
        let bucket = &f.id;
        let versions = all_versions(p, bucket).await?;
        // The client machine's binary and secret are this tool's, not data.
        let data = versions.iter().filter(|v| !v.key().starts_with(templates::config::CLIENT_PREFIX)).count();
        if data > 0 && *bucket == p.names.sink_bucket && !p.options.delete_data {
            return Err(ProvisionError::Config(format!(
                "s3://{bucket} holds {data} object versions of pipeline data; teardown keeps data unless --delete-data is given (or empty the bucket yourself)"
            )));
        }
        for chunk in versions.chunks(1000) {
            let delete = Delete::builder().set_objects(Some(chunk.to_vec())).quiet(true).build().expect("objects set");
            let out = p
                .clients
                .s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(ProvisionError::aws("DeleteObjects", bucket.clone()))?;
            if let Some(e) = out.errors().first() {
                return Err(ProvisionError::Failed {
                    what: format!("emptying s3://{bucket}"),
                    detail: format!("{:?}: {:?}", e.key(), e.message()),
                });
            }
        }
        p.clients.s3.delete_bucket().bucket(bucket).send().await.map_err(ProvisionError::aws("DeleteBucket", bucket.clone()))?;
    }
    Ok(())
}

/// Every object version and delete marker (a versioned bucket cannot be
/// deleted while any remain).
async fn all_versions(p: &Provisioner, bucket: &str) -> Result<Vec<ObjectIdentifier>> {
    let mut out = Vec::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = p
            .clients
            .s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .map_err(ProvisionError::aws("ListObjectVersions", bucket.to_string()))?;
        let ids = page
            .versions()
            .iter()
            .map(|v| (v.key(), v.version_id()))
            .chain(page.delete_markers().iter().map(|m| (m.key(), m.version_id())));
        for (key, version) in ids {
            if let Some(key) = key {
                let id = ObjectIdentifier::builder().key(key).set_version_id(version.map(str::to_string));
                out.push(id.build().expect("key set"));
            }
        }
        if page.is_truncated() != Some(true) {
            return Ok(out);
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
    }
}
