//! The three source record kinds of SPEC 2 and the raw schema of their rows.

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

    /// The column that identifies a row (`index` for pins, `ind` otherwise).
    /// A record without it is not a row of its kind: it could join nothing.
    pub fn key_column(self) -> &'static str {
        match self {
            Kind::Pin => "index",
            Kind::Geo | Kind::User => "ind",
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

/// Column types of the raw records, as the emulator sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawType {
    Int,
    Float,
    Text,
}

impl RawType {
    /// The type in Spark's DDL.
    pub fn spark(self) -> &'static str {
        match self {
            RawType::Int => "BIGINT",
            RawType::Float => "DOUBLE",
            RawType::Text => "STRING",
        }
    }
}

/// The columns of `<kind>_raw` (SPEC 2), the one definition both engines'
/// readers use (DataFusion's Arrow schema, Spark's DDL). Datetimes stay
/// text: the cleaning SQL parses them, so every accepted spelling goes
/// through the same rule.
pub fn raw_columns(kind: Kind) -> &'static [(&'static str, RawType)] {
    use RawType::{Float, Int, Text};
    match kind {
        Kind::Pin => &[
            ("index", Int),
            ("unique_id", Text),
            ("title", Text),
            ("description", Text),
            ("poster_name", Text),
            ("follower_count", Text),
            ("tag_list", Text),
            ("is_image_or_video", Text),
            ("image_src", Text),
            ("downloaded", Int),
            ("save_location", Text),
            ("category", Text),
        ],
        Kind::Geo => &[("ind", Int), ("timestamp", Text), ("latitude", Float), ("longitude", Float), ("country", Text)],
        Kind::User => &[("ind", Int), ("first_name", Text), ("last_name", Text), ("age", Int), ("date_joined", Text)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_pin() -> Pin {
        Pin {
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
        }
    }

    #[test]
    fn pin_serialises_in_source_key_order() {
        let pin = sample_pin();
        let json = serde_json::to_string(&pin).unwrap();
        assert!(
            json.starts_with(r#"{"index":1,"unique_id":"u","title":"t","description":"d","poster_name":"p","follower_count":"3k""#),
            "{json}"
        );
    }

    #[test]
    fn raw_columns_match_the_rows_the_emulator_sends() {
        let round = Round {
            pin: sample_pin(),
            geo: Geo { ind: 1, timestamp: "2020-01-01 00:00:00".into(), latitude: 1.0, longitude: 2.0, country: "c".into() },
            user: User { ind: 1, first_name: "a".into(), last_name: "b".into(), age: 20, date_joined: "2016-01-01 00:00:00".into() },
        };
        for kind in Kind::ALL {
            let value = round.value(kind);
            let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
            let columns: Vec<&str> = raw_columns(kind).iter().map(|(c, _)| *c).collect();
            assert_eq!(keys, columns, "{kind}");
        }
    }
}
