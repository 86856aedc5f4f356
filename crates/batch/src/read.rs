//! Reading the sink's objects of one kind: every line through the raw-row
//! rule (`crate::raw_rows`), refused lines into the quarantine with where
//! they came from. One bad line never fails the job.

use std::collections::BTreeMap;
use std::sync::Arc;

use contract::Kind;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::{BatchError, KindSummary};
use crate::raw_rows::RawRowDecoder;

/// Objects fetched and decoded at the same time.
const CONCURRENT_OBJECTS: usize = 2;

/// Raw rows cleaned at a time: enough that planning is negligible, few
/// enough that raw rows never fill the memory.
const CHUNK_ROWS: u64 = 50_000;

/// Text refused by the raw-row rule, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The object's key in the bucket (or its path under the input directory).
    pub object: String,
    /// 1-based line number in the object.
    pub line: u64,
    /// The line as it was (invalid UTF-8 replaced).
    pub raw: String,
    pub reason: String,
    /// Records the refused text holds (an array line may hold several).
    pub records: u64,
}

/// One kind's input, cleaned chunk by chunk, and what was refused.
#[derive(Debug)]
pub struct KindInput {
    /// Each chunk's cleaned rows: duplicates are dropped within a chunk,
    /// not yet across chunks.
    pub cleaned_parts: Vec<RecordBatch>,
    pub cleaned_schema: SchemaRef,
    /// The chunks' summaries merged (counts of rows are set by the caller).
    pub summary: KindSummary,
    /// Rows decoded.
    pub rows: u64,
    pub quarantined: Vec<Quarantined>,
}

impl KindInput {
    /// Records refused (what a reader counting records would have seen).
    pub fn quarantined_records(&self) -> u64 {
        self.quarantined.iter().map(|q| q.records).sum()
    }
}

/// Keys of the JSON objects under `prefix`, in key order (objects are
/// named by partition and first offset, so this is offset order).
pub async fn list_objects(store: &Arc<dyn ObjectStore>, prefix: &ObjectPath) -> Result<Vec<ObjectPath>, object_store::Error> {
    let mut keys: Vec<ObjectPath> = store
        .list(Some(prefix))
        .map_ok(|m| m.location)
        .try_filter(|p| futures::future::ready(p.as_ref().ends_with(".json")))
        .try_collect()
        .await?;
    keys.sort();
    Ok(keys)
}

/// Fetch and decode the objects, several at a time, keeping their order,
/// and clean them in chunks of about [`CHUNK_ROWS`] raw rows. Cleaning is
/// row by row plus dropping exact duplicates, so cleaning chunks and then
/// dropping duplicates across them gives the same table as cleaning
/// everything at once, without holding all raw rows in memory.
pub async fn read_kind(store: &Arc<dyn ObjectStore>, kind: Kind, keys: Vec<ObjectPath>) -> Result<KindInput, BatchError> {
    let store = store.clone();
    let decoded = futures::stream::iter(keys)
        .map(move |key| {
            let store = store.clone();
            async move {
                let fetch_err = |source| BatchError::Fetch { key: key.to_string(), source };
                let bytes = store.get(&key).await.map_err(fetch_err)?.bytes().await.map_err(fetch_err)?;
                // JSON decoding is the CPU part: off the I/O threads.
                tokio::task::spawn_blocking(move || decode_object(kind, key.as_ref(), &bytes))
                    .await
                    .map_err(|e| BatchError::Join(e.to_string()))
            }
        })
        .buffered(CONCURRENT_OBJECTS);
    // Fetching and decoding run in a task of their own, so that they go on
    // while a chunk is being cleaned; the channel bounds what waits.
    let (tx, mut rx) = tokio::sync::mpsc::channel(CONCURRENT_OBJECTS);
    let producer = tokio::spawn(async move {
        let mut decoded = std::pin::pin!(decoded);
        while let Some(object) = decoded.next().await {
            let failed = object.is_err();
            if tx.send(object).await.is_err() || failed {
                break;
            }
        }
    });
    let mut input = KindInput {
        cleaned_parts: Vec::new(),
        cleaned_schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
        summary: KindSummary::default(),
        rows: 0,
        quarantined: Vec::new(),
    };
    let mut chunk = Vec::new();
    let mut chunk_rows = 0;
    loop {
        let next = rx.recv().await.transpose()?;
        let last = next.is_none();
        if let Some(object) = next {
            chunk.extend(object.batches);
            chunk_rows += object.rows;
            input.rows += object.rows;
            input.quarantined.extend(object.quarantined);
            input.summary.merge(&KindSummary { nulled: object.nulled, ..Default::default() });
        }
        // The last chunk is cleaned even when empty: it gives the schema.
        if chunk_rows >= CHUNK_ROWS || (last && (chunk_rows > 0 || input.cleaned_parts.is_empty())) {
            let cleaned = super::clean_kind(kind, std::mem::take(&mut chunk)).await?;
            input.cleaned_parts.extend(cleaned.batches);
            input.cleaned_schema = cleaned.schema;
            input.summary.merge(&cleaned.summary);
            chunk_rows = 0;
            // Duplicates repeat across chunks: drop them as they pile up, so
            // the parts stay near the size of the cleaned table.
            let part_rows: usize = input.cleaned_parts.iter().map(RecordBatch::num_rows).sum();
            if part_rows as u64 >= CHUNK_ROWS {
                input.cleaned_parts = super::distinct(input.cleaned_schema.clone(), std::mem::take(&mut input.cleaned_parts)).await?;
            }
        }
        if last {
            producer.await.map_err(|e| BatchError::Join(e.to_string()))?;
            return Ok(input);
        }
    }
}

/// One object's lines, decoded.
#[derive(Debug)]
pub struct DecodedObject {
    pub batches: Vec<RecordBatch>,
    pub rows: u64,
    pub quarantined: Vec<Quarantined>,
    /// Placeholders the cleaning will null, per column and value.
    pub nulled: BTreeMap<String, BTreeMap<String, u64>>,
}

/// One object's lines: rows, and the refused lines.
pub fn decode_object(kind: Kind, key: &str, bytes: &[u8]) -> DecodedObject {
    let mut decoder = RawRowDecoder::new(kind);
    let mut rows = 0;
    let mut quarantined = Vec::new();
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain((bytes.last() != Some(&b'\n')).then_some(bytes.len()));
    for (i, end) in ends.enumerate() {
        let line = &bytes[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let outcome = decoder.push(line);
        rows += outcome.rows;
        for refused in outcome.refused {
            quarantined.push(Quarantined {
                object: key.to_string(),
                line: i as u64 + 1,
                raw: String::from_utf8_lossy(line).into_owned(),
                reason: refused.reason,
                records: refused.records,
            });
        }
    }
    let nulled = decoder.nulled();
    DecodedObject { batches: decoder.finish(), rows, quarantined, nulled }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_lines_keep_their_object_and_line_number() {
        let text = b"{\"ind\": 1}\r\n\nnot json\n[{\"ind\": 2}, {\"ind\": 3}]\n{\"country\": \"x\"}\n";
        let DecodedObject { batches, rows, quarantined: q, .. } =
            decode_object(Kind::Geo, "topics/t/partition=0/t+0+0000000000.json", text);
        assert_eq!(rows, 3);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        assert_eq!(q.len(), 2);
        assert_eq!((q[0].line, q[0].raw.as_str(), q[0].records), (3, "not json", 1));
        assert_eq!(q[1].line, 5);
        assert!(q[1].reason.contains("no `ind`"), "{}", q[1].reason);
        assert_eq!(q[1].object, "topics/t/partition=0/t+0+0000000000.json");
    }
}
