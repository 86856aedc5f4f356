//! Object keys of the S3 sink layout (SPEC 3.3): the Confluent S3 sink's
//! DefaultPartitioner with JsonFormat. The sink writes them, `generate`
//! writes the same layout into a directory, and the batch job and `status`
//! read it.

/// Object key of the records of `topic`/`partition` from `start_offset` on.
pub fn object_key(topic: &str, partition: i32, start_offset: i64) -> String {
    format!("topics/{topic}/partition={partition}/{topic}+{partition}+{start_offset:010}.json")
}

/// Key of a record that is not valid JSON, named by its coordinates.
pub fn dead_letter_key(topic: &str, partition: i32, offset: i64) -> String {
    format!("dead-letter/topics/{topic}/partition={partition}/{topic}+{partition}+{offset:010}.bin")
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
