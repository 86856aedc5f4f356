//! Object keys of the S3 sink layout (SPEC 3.3): the Confluent S3 sink's
//! DefaultPartitioner with JsonFormat. The sink writes them, `generate`
//! writes the same layout into a directory, and the batch job and `status`
//! read it.

/// Where a location's layout starts inside its store: the key prefix of
/// `s3://bucket/some/prefix` (empty for a bucket's root or a directory).
/// Every key the sink writes, and every listing that reads them back, is
/// joined to it here, so no reader spells the join again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefix(String);

impl Prefix {
    /// A prefix as a location names it; leading and trailing `/` are not part of it.
    pub fn new(prefix: &str) -> Self {
        Self(prefix.trim_matches('/').to_string())
    }

    /// `key` (a key of the layout) inside the prefix.
    pub fn join(&self, key: &str) -> String {
        if self.0.is_empty() { key.to_string() } else { format!("{}/{key}", self.0) }
    }

    /// The folder of every object of `topic`, inside the prefix.
    pub fn topic_dir(&self, topic: &str) -> String {
        self.join(&topic_dir(topic))
    }

    /// The folder of every object of `topic`/`partition`, inside the prefix.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> String {
        self.join(&partition_dir(topic, partition))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The folder of every object of `topic`: `topics/<topic>`.
pub fn topic_dir(topic: &str) -> String {
    format!("topics/{topic}")
}

/// The folder of every object of `topic`/`partition`.
pub fn partition_dir(topic: &str, partition: i32) -> String {
    format!("{}/partition={partition}", topic_dir(topic))
}

/// Object key of the records of `topic`/`partition` from `start_offset` on.
pub fn object_key(topic: &str, partition: i32, start_offset: i64) -> String {
    format!("{}/{topic}+{partition}+{start_offset:010}.json", partition_dir(topic, partition))
}

/// Key of a record that is not valid JSON, named by its coordinates.
pub fn dead_letter_key(topic: &str, partition: i32, offset: i64) -> String {
    format!("dead-letter/{}/{topic}+{partition}+{offset:010}.bin", partition_dir(topic, partition))
}

/// Start offset encoded in an object key made by [`object_key`].
pub fn start_offset_of(key: &str) -> Option<i64> {
    let file = key.rsplit('/').next()?;
    let stem = file.strip_suffix(".json")?;
    stem.rsplit('+').next()?.parse().ok()
}

/// A key that every object key of `topic`/`partition` starting at `offset`
/// or later sorts after, and every earlier one before: where a listing of
/// the partition's objects from `offset` on can start (S3's `StartAfter`),
/// so that it does not page through the partition's whole history.
///
/// `None` from 10^9 on: start offsets are padded to ten digits, so from
/// there an eleven-digit offset (`10000000000`) can sort before a ten-digit
/// one (`1500000000`), and only a full listing finds every later object.
pub fn listing_start_after(topic: &str, partition: i32, offset: i64) -> Option<String> {
    (0..1_000_000_000).contains(&offset).then(|| {
        let key = object_key(topic, partition, offset);
        key.strip_suffix(".json").expect("object keys end in .json").to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_confluent_layout() {
        let k = object_key("0e2a0bfcc015.pin", 0, 42);
        assert_eq!(k, "topics/0e2a0bfcc015.pin/partition=0/0e2a0bfcc015.pin+0+0000000042.json");
        assert_eq!(start_offset_of(&k), Some(42));
        assert_eq!(start_offset_of("topics/t/partition=0/other.txt"), None);
        assert_eq!(dead_letter_key("t.pin", 2, 7), "dead-letter/topics/t.pin/partition=2/t.pin+2+0000000007.bin");
    }

    #[test]
    fn a_prefix_holds_the_whole_layout() {
        for (given, dir) in [("", "topics/t.pin/partition=3"), ("/runs/a/", "runs/a/topics/t.pin/partition=3")] {
            let prefix = Prefix::new(given);
            assert_eq!(prefix.partition_dir("t.pin", 3), dir);
            assert!(prefix.join(&object_key("t.pin", 3, 0)).starts_with(&format!("{dir}/")));
            assert!(prefix.partition_dir("t.pin", 3).starts_with(&prefix.topic_dir("t.pin")));
        }
    }

    #[test]
    fn a_listing_from_an_offset_skips_exactly_the_earlier_objects() {
        let offsets = [0, 1, 9, 10, 41, 42, 43, 99, 100, 999_999_999, 1_000_000_000, 9_999_999_999, 10_000_000_000, 123_456_789_012];
        for from in offsets {
            let Some(start_after) = listing_start_after("t.pin", 3, from) else {
                assert!(from >= 1_000_000_000, "a listing start for {from}");
                continue;
            };
            for o in offsets {
                let listed = object_key("t.pin", 3, o) > start_after;
                assert_eq!(listed, o >= from, "object at {o}, listing from {from}");
            }
        }
    }
}
