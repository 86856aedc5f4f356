//! The three source record kinds of SPEC section 2 and the names derived
//! from a deployment's user id (SPEC section 1). Every component uses these;
//! nothing else spells a topic or bucket name.

use serde::{Deserialize, Serialize};

/// A row of `pinterest_data`. Field order is the wire order of the original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    pub index: i64,
    pub unique_id: String,
    pub title: String,
    pub description: String,
    pub poster_name: String,
    pub follower_count: String,
    pub tag_list: String,
    pub is_image_or_video: String,
    pub image_src: String,
    pub downloaded: i64,
    pub save_location: String,
    pub category: String,
}

/// A row of `geolocation_data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Geo {
    pub ind: i64,
    /// `YYYY-MM-DD HH:MM:SS`, as the original emulator sends it.
    pub timestamp: String,
    pub latitude: f64,
    pub longitude: f64,
    pub country: String,
}

/// A row of `user_data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub ind: i64,
    pub first_name: String,
    pub last_name: String,
    pub age: i64,
    /// `YYYY-MM-DD HH:MM:SS`.
    pub date_joined: String,
}

/// One emulation round: the rows at one offset of the three tables, which
/// share `index`/`ind`.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub pin: Pin,
    pub geo: Geo,
    pub user: User,
}

impl Round {
    /// The record of one kind as the JSON value the emulator posts.
    pub fn value(&self, kind: Kind) -> serde_json::Value {
        serde_json::to_value(self.record(kind)).expect("records serialise")
    }

    /// The record of one kind, serialised as is: the same JSON as
    /// [`Round::value`] without building a tree first.
    pub fn record(&self, kind: Kind) -> RecordRef<'_> {
        match kind {
            Kind::Pin => RecordRef::Pin(&self.pin),
            Kind::Geo => RecordRef::Geo(&self.geo),
            Kind::User => RecordRef::User(&self.user),
        }
    }
}

/// One record of a round, borrowed.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum RecordRef<'a> {
    Pin(&'a Pin),
    Geo(&'a Geo),
    User(&'a User),
}

/// The three record kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Pin,
    Geo,
    User,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Pin, Kind::Geo, Kind::User];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Pin => "pin",
            Kind::Geo => "geo",
            Kind::User => "user",
        }
    }

    /// The source table name in the original MySQL database.
    pub fn source_table(self) -> &'static str {
        match self {
            Kind::Pin => "pinterest_data",
            Kind::Geo => "geolocation_data",
            Kind::User => "user_data",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown record kind `{s}` (expected pin, geo or user)"))
    }
}

/// Names of a deployment's resources, all derived from its user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    uid: String,
}

impl Names {
    /// `uid` must pass [`templates::config::check_uid`], the rule the
    /// rendered deployment files follow too.
    pub fn new(uid: impl Into<String>) -> Result<Self, String> {
        let uid = uid.into();
        templates::config::check_uid(&uid)?;
        Ok(Self { uid })
    }

    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// Kafka topic `<uid>.<kind>`.
    pub fn topic(&self, kind: Kind) -> String {
        format!("{}.{}", self.uid, kind)
    }

    /// All three topics.
    pub fn topics(&self) -> Vec<String> {
        Kind::ALL.iter().map(|k| self.topic(*k)).collect()
    }

    /// The sink's `topics.regex`, anchored for librdkafka's regex subscription.
    pub fn topics_regex(&self) -> String {
        format!("^{}\\..*", regex_escape(&self.uid))
    }

    /// S3 bucket the sink writes to.
    pub fn sink_bucket(&self) -> String {
        templates::config::default_sink_bucket(&self.uid)
    }

    /// Kinesis stream `streaming-<uid>-<kind>`.
    pub fn stream(&self, kind: Kind) -> String {
        templates::config::stream_name(&self.uid, kind.as_str())
    }

    /// Delta table `<uid>_<kind>_table`.
    pub fn delta_table(&self, kind: Kind) -> String {
        format!("{}_{}_table", self.uid, kind)
    }

    /// Which kind a topic of this deployment carries, if any.
    pub fn kind_of_topic(&self, topic: &str) -> Option<Kind> {
        let rest = topic.strip_prefix(&self.uid)?.strip_prefix('.')?;
        rest.parse().ok()
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$".contains(c);
            special.then_some('\\').into_iter().chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec() {
        let n = Names::new("0e2a0bfcc015").unwrap();
        assert_eq!(n.topic(Kind::Pin), "0e2a0bfcc015.pin");
        assert_eq!(n.sink_bucket(), "user-0e2a0bfcc015-bucket");
        assert_eq!(n.stream(Kind::Geo), "streaming-0e2a0bfcc015-geo");
        assert_eq!(n.delta_table(Kind::User), "0e2a0bfcc015_user_table");
        assert_eq!(n.topics_regex(), "^0e2a0bfcc015\\..*");
        assert_eq!(n.kind_of_topic("0e2a0bfcc015.geo"), Some(Kind::Geo));
        assert_eq!(n.kind_of_topic("0e2a0bfcc015.other"), None);
        assert_eq!(n.kind_of_topic("x.pin"), None);
    }

    #[test]
    fn bad_uids_are_refused_with_the_rule() {
        for bad in ["", "UPPER", "has space", "a.b", &"x".repeat(41)] {
            let err = Names::new(bad).unwrap_err();
            assert!(err.contains("lowercase"), "{err}");
        }
    }

    #[test]
    fn pin_serialises_in_source_key_order() {
        let pin = Pin {
            index: 1,
            unique_id: "u".into(),
            title: "t".into(),
            description: "d".into(),
            poster_name: "p".into(),
            follower_count: "3k".into(),
            tag_list: "a,b".into(),
            is_image_or_video: "image".into(),
            image_src: "s".into(),
            downloaded: 1,
            save_location: "Local save in /data/x".into(),
            category: "x".into(),
        };
        let json = serde_json::to_string(&pin).unwrap();
        assert!(
            json.starts_with(r#"{"index":1,"unique_id":"u","title":"t","description":"d","poster_name":"p","follower_count":"3k""#),
            "{json}"
        );
    }
}
