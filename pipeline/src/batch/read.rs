//! Reading the sink's objects of one kind: every line through the raw-row
//! rule (`crate::raw_rows`), refused lines into the quarantine with where
//! they came from. One bad line never fails the job.

use std::sync::Arc;

use contract::Kind;
use datafusion::arrow::record_batch::RecordBatch;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};

use super::BatchError;
use crate::raw_rows::RawRowDecoder;

/// Objects fetched and decoded at the same time.
const CONCURRENT_OBJECTS: usize = 4;

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

/// The raw rows of one kind and what was refused.
#[derive(Debug, Default)]
pub struct KindInput {
    pub batches: Vec<RecordBatch>,
    pub objects: u64,
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

/// Fetch and decode the objects, several at a time, keeping their order.
pub async fn read_kind(store: &Arc<dyn ObjectStore>, kind: Kind, keys: Vec<ObjectPath>) -> Result<KindInput, BatchError> {
    let objects = keys.len() as u64;
    let decoded: Vec<(Vec<RecordBatch>, u64, Vec<Quarantined>)> = futures::stream::iter(keys)
        .map(|key| {
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
        .buffered(CONCURRENT_OBJECTS)
        .try_collect()
        .await?;
    let mut input = KindInput { objects, ..Default::default() };
    for (batches, rows, quarantined) in decoded {
        input.batches.extend(batches);
        input.rows += rows;
        input.quarantined.extend(quarantined);
    }
    Ok(input)
}

/// One object's lines: rows, and the refused lines.
pub fn decode_object(kind: Kind, key: &str, bytes: &[u8]) -> (Vec<RecordBatch>, u64, Vec<Quarantined>) {
    let mut decoder = RawRowDecoder::new(kind);
    let mut rows = 0;
    let mut quarantined = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
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
    (decoder.finish(), rows, quarantined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_lines_keep_their_object_and_line_number() {
        let text = b"{\"ind\": 1}\r\n\nnot json\n[{\"ind\": 2}, {\"ind\": 3}]\n{\"country\": \"x\"}\n";
        let (batches, rows, q) = decode_object(Kind::Geo, "topics/t/partition=0/t+0+0000000000.json", text);
        assert_eq!(rows, 3);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        assert_eq!(q.len(), 2);
        assert_eq!((q[0].line, q[0].raw.as_str(), q[0].records), (3, "not json", 1));
        assert_eq!(q[1].line, 5);
        assert!(q[1].reason.contains("no `ind`"), "{}", q[1].reason);
        assert_eq!(q[1].object, "topics/t/partition=0/t+0+0000000000.json");
    }
}
