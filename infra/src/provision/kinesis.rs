//! The three Kinesis streams of the stream path (SPEC 1, 3.2).

use aws_sdk_kinesis::types::StreamStatus;

use super::wait::{self, Poll};
use super::{Action, Component, Found, ProvisionError, Provisioner, Result};
use crate::stack::STACK_TAG;

const C: Component = Component::Kinesis;

/// Status of the stream, or None if there is none.
async fn status(p: &Provisioner, stream: &str) -> Result<Option<StreamStatus>> {
    match p.clients.kinesis.describe_stream_summary().stream_name(stream).send().await {
        Ok(out) => Ok(out.stream_description_summary().map(|s| s.stream_status().clone())),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(ProvisionError::aws("DescribeStreamSummary", stream.to_string())(e)),
    }
}

async fn tagged(p: &Provisioner, stream: &str) -> Result<bool> {
    let out = match p.clients.kinesis.list_tags_for_stream().stream_name(stream).send().await {
        Ok(out) => out,
        // Deleted between listing and this call: not ours to report.
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(false),
        Err(e) => return Err(ProvisionError::aws("ListTagsForStream", stream.to_string())(e)),
    };
    Ok(out.tags().iter().any(|t| t.key() == STACK_TAG && t.value() == Some(p.uid())))
}

pub async fn apply(p: &mut Provisioner) -> Result<()> {
    for stream in p.names.streams.clone() {
        let resource = format!("kinesis stream {stream}");
        let existing = status(p, &stream).await?;
        match existing {
            Some(_) if tagged(p, &stream).await? => {
                p.record(C, resource, Action::Exists);
                continue;
            }
            // Named for this deployment but untagged: a run stopped between
            // CreateStream and tagging. Finish it.
            Some(_) => p.record(C, resource, Action::Update("stack tag missing".into())),
            None => p.record(C, resource, Action::Create),
        }
        if p.dry_run() {
            continue;
        }
        let (k, v) = p.stack_tag();
        if existing.is_none() {
            p.clients
                .kinesis
                .create_stream()
                .stream_name(&stream)
                .shard_count(p.config.kinesis.shard_count as i32)
                .tags(k.clone(), v.clone())
                .send()
                .await
                .map_err(ProvisionError::aws("CreateStream", stream.clone()))?;
        }
        wait_active(p, &stream).await?;
        // CreateStream's tags are not honoured everywhere (moto); tagging
        // again is harmless.
        p.clients
            .kinesis
            .add_tags_to_stream()
            .stream_name(&stream)
            .tags(k, v)
            .send()
            .await
            .map_err(ProvisionError::aws("AddTagsToStream", stream.clone()))?;
    }
    Ok(())
}

async fn wait_active(p: &Provisioner, stream: &str) -> Result<()> {
    wait::until(&p.options.wait, &format!("kinesis stream {stream} to be ACTIVE"), || async {
        Ok(match status(p, stream).await? {
            Some(StreamStatus::Active) => Poll::Ready(()),
            Some(s) => Poll::Pending(s.as_str().to_string()),
            None => Poll::Pending("not visible yet".into()),
        })
    })
    .await
}

pub async fn discover(p: &mut Provisioner) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    // Paged by the last name seen: HasMoreStreams is set everywhere,
    // NextToken not always (moto).
    let mut names: Vec<String> = Vec::new();
    loop {
        let page = p
            .clients
            .kinesis
            .list_streams()
            .limit(100)
            .set_exclusive_start_stream_name(names.last().cloned())
            .send()
            .await
            .map_err(ProvisionError::aws("ListStreams", "(all)"))?;
        names.extend(page.stream_names().iter().cloned());
        if !page.has_more_streams() || page.stream_names().is_empty() {
            break;
        }
    }
    for name in names {
        if tagged(p, &name).await? {
            let state = status(p, &name).await?.map(|s| s.as_str().to_string());
            out.push(Found { component: C, kind: "kinesis stream", id: name, state });
        }
    }
    Ok(out)
}

pub async fn delete(p: &mut Provisioner, found: &[Found]) -> Result<()> {
    for f in found {
        if f.state.as_deref() != Some("DELETING") {
            p.clients
                .kinesis
                .delete_stream()
                .stream_name(&f.id)
                .enforce_consumer_deletion(true)
                .send()
                .await
                .map_err(ProvisionError::aws("DeleteStream", f.id.clone()))?;
        }
    }
    for f in found {
        wait::until(&p.options.wait, &format!("kinesis stream {} to be deleted", f.id), || async {
            Ok(match status(p, &f.id).await? {
                None => Poll::Ready(()),
                Some(s) => Poll::Pending(s.as_str().to_string()),
            })
        })
        .await?;
    }
    Ok(())
}
