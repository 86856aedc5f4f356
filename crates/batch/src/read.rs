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

/// Objects a decoder fetches at a time. One: while it waits, the other
/// decoders keep the cores busy, and each object read ahead held memory
/// (measured: a second one per decoder added about 10 MB to the peak and
/// saved no time).
const CONCURRENT_OBJECTS: usize = 1;

/// Distinct raw rows cleaned at a time: enough that planning is
/// negligible, few enough that raw rows never fill the memory. Repeated
/// lines add no rows (`crate::raw_rows`), so a chunk may span far more
/// lines than this.
const CHUNK_ROWS: usize = 50_000;

/// Text refused by the raw-row rule, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantined {
    /// The object's key in the bucket (or its path under the input directory).
    pub object: String,
    /// 1-based line number in the object; 0 for an object that could not
    /// be fetched at all.
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

impl Quarantined {
    /// A whole object that could not be fetched: `line` 0, nothing raw,
    /// and its records unknown (counted as none).
    fn unfetchable(key: &str, e: &object_store::Error) -> Self {
        Self { object: key.to_string(), line: 0, raw: String::new(), reason: format!("the object could not be fetched: {e}"), records: 0 }
    }
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

/// Decoders per kind, each taking every other object: the three kinds'
/// input is far from even (pins are three quarters of the bytes), so one
/// decoder per kind would leave a core idle once the small kinds are read.
const DECODE_LANES: usize = 2;

/// Fetch the objects (one at a time per decoder), decode them into chunks of
/// about [`CHUNK_ROWS`] distinct raw rows, and clean each chunk. Cleaning
/// is row by row plus dropping exact duplicates, so cleaning chunks and
/// then dropping duplicates across them gives the same table as cleaning
/// everything at once, without holding all raw rows in memory.
pub async fn read_kind(store: &Arc<dyn ObjectStore>, kind: Kind, keys: Vec<ObjectPath>) -> Result<KindInput, BatchError> {
    // Decoding runs in tasks of their own, so that it goes on while a chunk
    // is being cleaned; the channel bounds what waits.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<DecodedChunk, BatchError>>(1);
    let mut lanes = Vec::new();
    for lane in 0..DECODE_LANES.min(keys.len()).max(1) {
        let keys: Vec<ObjectPath> = keys.iter().skip(lane).step_by(DECODE_LANES).cloned().collect();
        lanes.push(tokio::spawn(decode_lane(store.clone(), kind, keys, tx.clone())));
    }
    drop(tx);
    let mut input = KindInput {
        cleaned_parts: Vec::new(),
        cleaned_schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
        summary: KindSummary::default(),
        rows: 0,
        quarantined: Vec::new(),
    };
    while let Some(decoded) = rx.recv().await {
        let decoded = decoded?;
        input.rows += decoded.rows;
        input.quarantined.extend(decoded.quarantined);
        input.summary.merge(&KindSummary { nulled: decoded.nulled, ..Default::default() });
        // Every chunk is cleaned, even an empty last one: it gives the schema.
        let cleaned = super::clean_kind(kind, decoded.batches).await?;
        input.cleaned_parts.extend(cleaned.batches);
        input.cleaned_schema = cleaned.schema;
        input.summary.merge(&cleaned.summary);
        // Duplicates repeat across chunks: drop them as they pile up, so
        // the parts stay near the size of the cleaned table.
        let part_rows: usize = input.cleaned_parts.iter().map(RecordBatch::num_rows).sum();
        if part_rows >= CHUNK_ROWS {
            input.cleaned_parts = super::distinct(input.cleaned_schema.clone(), std::mem::take(&mut input.cleaned_parts)).await?;
        }
    }
    for lane in lanes {
        lane.await.map_err(|e| BatchError::Join(e.to_string()))?;
    }
    // The lanes interleave objects: back to object and line order (keys
    // name the partition and first offset).
    input.quarantined.sort_by(|a, b| (&a.object, a.line).cmp(&(&b.object, b.line)));
    Ok(input)
}

/// One decoder's share of a kind's objects, fetched and decoded
/// in order into chunks sent to the cleaner; the last chunk is sent even
/// when empty.
async fn decode_lane(
    store: Arc<dyn ObjectStore>,
    kind: Kind,
    keys: Vec<ObjectPath>,
    tx: tokio::sync::mpsc::Sender<Result<DecodedChunk, BatchError>>,
) {
    let mut fetched = futures::stream::iter(keys)
        .map(move |key| {
            let store = store.clone();
            async move {
                let bytes = match store.get(&key).await {
                    Ok(got) => got.bytes().await,
                    Err(e) => Err(e),
                };
                (key, bytes)
            }
        })
        .buffered(CONCURRENT_OBJECTS);
    let mut chunk = ChunkDecoder::new(kind);
    loop {
        let next = fetched.next().await;
        let last = next.is_none();
        if let Some((key, got)) = next {
            // object_store has retried what was worth retrying. One object
            // that cannot be read (the sink may have removed it since the
            // listing) is a quarantine entry, not the end of the run.
            let bytes = match got {
                Ok(bytes) => bytes,
                Err(e) => {
                    chunk.quarantined.push(Quarantined::unfetchable(key.as_ref(), &e));
                    continue;
                }
            };
            // JSON decoding is the CPU part: off the I/O threads.
            let decoded = tokio::task::spawn_blocking(move || {
                chunk.decode_object(key.as_ref(), &bytes);
                chunk
            })
            .await;
            chunk = match decoded {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(Err(BatchError::Join(e.to_string()))).await;
                    return;
                }
            };
        }
        if last || chunk.decoder.rows_held() >= CHUNK_ROWS / DECODE_LANES {
            let full = std::mem::replace(&mut chunk, ChunkDecoder::new(kind));
            if tx.send(Ok(full.finish())).await.is_err() || last {
                return;
            }
        }
    }
}

/// Lines decoded into one chunk of raw rows, and what was refused.
#[derive(Debug)]
pub struct DecodedChunk {
    /// Distinct raw rows with their occurrences (`raw_rows::decoded_schema`).
    pub batches: Vec<RecordBatch>,
    /// Records decoded, repeats included.
    pub rows: u64,
    pub quarantined: Vec<Quarantined>,
    /// Placeholders the cleaning will null, per column and value.
    pub nulled: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Decodes objects, one after another, into one chunk.
struct ChunkDecoder {
    decoder: RawRowDecoder,
    rows: u64,
    quarantined: Vec<Quarantined>,
}

impl ChunkDecoder {
    fn new(kind: Kind) -> Self {
        Self { decoder: RawRowDecoder::new(kind), rows: 0, quarantined: Vec::new() }
    }

    /// Every line of one object through the raw-row rule.
    fn decode_object(&mut self, key: &str, bytes: &[u8]) {
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', bytes).chain((bytes.last() != Some(&b'\n')).then_some(bytes.len()));
        for (i, end) in ends.enumerate() {
            let line = &bytes[start..end];
            start = end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let outcome = self.decoder.push(line);
            self.rows += outcome.rows;
            for refused in outcome.refused {
                self.quarantined.push(Quarantined {
                    object: key.to_string(),
                    line: i as u64 + 1,
                    raw: String::from_utf8_lossy(line).into_owned(),
                    reason: refused.reason,
                    records: refused.records,
                });
            }
        }
    }

    fn finish(self) -> DecodedChunk {
        let nulled = self.decoder.nulled();
        DecodedChunk { batches: self.decoder.finish(), rows: self.rows, quarantined: self.quarantined, nulled }
    }
}

/// One object's lines: rows, and the refused lines.
pub fn decode_object(kind: Kind, key: &str, bytes: &[u8]) -> DecodedChunk {
    let mut chunk = ChunkDecoder::new(kind);
    chunk.decode_object(key, bytes);
    chunk.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_lines_keep_their_object_and_line_number() {
        let text = b"{\"ind\": 1}\r\n\nnot json\n[{\"ind\": 2}, {\"ind\": 3}]\n{\"country\": \"x\"}\n";
        let DecodedChunk { batches, rows, quarantined: q, .. } = decode_object(Kind::Geo, "topics/t/partition=0/t+0+0000000000.json", text);
        assert_eq!(rows, 3);
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 3);
        assert_eq!(q.len(), 2);
        assert_eq!((q[0].line, q[0].raw.as_str(), q[0].records), (3, "not json", 1));
        assert_eq!(q[1].line, 5);
        assert!(q[1].reason.contains("no `ind`"), "{}", q[1].reason);
        assert_eq!(q[1].object, "topics/t/partition=0/t+0+0000000000.json");
    }

    /// An object listed and then gone (the sink cleans up after a
    /// rebalance) ended the whole run with an error; now it is one
    /// quarantine entry naming the object, and the rest is read.
    #[tokio::test]
    async fn an_object_that_cannot_be_fetched_is_quarantined_and_the_rest_is_read() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let kept = ObjectPath::from("topics/u.geo/partition=0/u.geo+0+0000000000.json");
        let gone = ObjectPath::from("topics/u.geo/partition=0/u.geo+0+0000000001.json");
        for key in [&kept, &gone] {
            store.put(key, b"{\"ind\": 1, \"country\": \"x\"}\n".to_vec().into()).await.unwrap();
        }
        let keys = list_objects(&store, &ObjectPath::from("topics/u.geo")).await.unwrap();
        store.delete(&gone).await.unwrap();
        let input = read_kind(&store, Kind::Geo, keys).await.expect("one missing object does not end the run");
        assert_eq!(input.rows, 1);
        assert_eq!(input.quarantined.len(), 1, "{:?}", input.quarantined);
        let q = &input.quarantined[0];
        assert_eq!((q.object.as_str(), q.line, q.records), (gone.as_ref(), 0, 0));
        assert!(q.reason.contains("could not be fetched"), "{}", q.reason);
    }
}
