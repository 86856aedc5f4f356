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
}
