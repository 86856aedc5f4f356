//! Seeded synthetic source: the three tables of SPEC section 2 with the
//! shape, value distributions and placeholder ("dirty") values of the
//! original data, so that the cleaning rules have real work to do.
//!
//! A row is a pure function of `(seed, offset)`, so tables of any size are
//! generated lazily and every consumer (emulator, tests, benchmarks) sees
//! the same data for the same seed.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rand::{Rng, SeedableRng, seq::IndexedRandom};
use rand_chacha::ChaCha8Rng;

use contract::{Geo, Kind, Pin, Round, User};

/// Rows per table in the original database.
pub const ORIGINAL_TABLE_ROWS: u64 = 11_000;

/// Placeholder values the original source contains (SPEC 2).
pub mod placeholders {
    pub const DESCRIPTION_STORY: &str = "No description available Story format";
    pub const DESCRIPTION_NONE: &str = "No description available";
    pub const DESCRIPTION_UNTITLED: &str = "Untitled";
    pub const USER_INFO_ERROR: &str = "User Info Error";
    pub const IMAGE_SRC_ERROR: &str = "Image src error.";
    pub const NO_TAGS: &str = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e";
    pub const NO_TITLE: &str = "No Title Data Available";
}

const CATEGORIES: &[&str] = &[
    "art",
    "beauty",
    "christmas",
    "diy-and-crafts",
    "education",
    "event-planning",
    "finance",
    "home-decor",
    "mens-fashion",
    "quotes",
    "tattoos",
    "travel",
    "vehicles",
];

const COUNTRIES: &[&str] = &[
    "Afghanistan",
    "Albania",
    "Algeria",
    "American Samoa",
    "Andorra",
    "Angola",
    "Antarctica (the territory South of 60 deg S)",
    "Argentina",
    "Armenia",
    "Aruba",
    "Australia",
    "Austria",
    "Bangladesh",
    "Belgium",
    "Bolivia",
    "Brazil",
    "Bulgaria",
    "Canada",
    "Chile",
    "China",
    "Colombia",
    "Croatia",
    "Denmark",
    "Egypt",
    "France",
    "Germany",
    "Greece",
    "India",
    "Indonesia",
    "Ireland",
    "Italy",
    "Japan",
    "Kenya",
    "Maldives",
    "Mexico",
    "Nepal",
    "Netherlands",
    "Nigeria",
    "Norway",
    "Peru",
    "Poland",
    "Portugal",
    "Spain",
    "Sweden",
    "Turkey",
    "United Kingdom",
    "United States of America",
    "Vietnam",
];

const FIRST_NAMES: &[&str] = &[
    "Amber",
    "Andrew",
    "Alexandria",
    "Bethany",
    "Brian",
    "Charles",
    "Christopher",
    "Daniel",
    "David",
    "Denise",
    "Dylan",
    "Emily",
    "Eric",
    "Jessica",
    "John",
    "Joseph",
    "Kayla",
    "Kimberly",
    "Michael",
    "Rachel",
    "Robert",
    "Sarah",
    "Thomas",
    "Tyler",
    "Wendy",
    "Zachary",
];

const LAST_NAMES: &[&str] = &[
    "Allen", "Anderson", "Brown", "Chen", "Davis", "Garcia", "Harris", "Jackson", "Johnson", "Jones", "Lee", "Martin", "Miller", "Moore",
    "Nguyen", "Smith", "Taylor", "Thomas", "Thompson", "Walker", "White", "Williams", "Wilson", "Young",
];

const POSTERS: &[&str] = &[
    "Fiverr",
    "Ray Uyemura",
    "Cultura Colectiva",
    "Her Campus",
    "Tastemade",
    "BuzzFeed",
    "Etsy",
    "The Spruce",
    "Better Homes and Gardens",
    "Apartment Therapy",
    "Mens Fashion Mag",
    "Tattoo Ideas",
    "Travel + Leisure",
    "Car and Driver",
    "Quotes Daily",
    "DIY Joy",
    "Budget Bytes",
    "Nerd Wallet",
    "Teaching Ideas",
    "Party City",
    "Christmas Magic",
    "Beauty Tips",
    "Art Journal Daily",
];

const WORDS: &[&str] = &[
    "best",
    "easy",
    "ideas",
    "simple",
    "modern",
    "vintage",
    "diy",
    "small",
    "beautiful",
    "creative",
    "cheap",
    "quick",
    "amazing",
    "cute",
    "classic",
    "minimalist",
    "bold",
    "cozy",
    "tips",
    "guide",
];

/// A deterministic, lazily generated copy of the three source tables.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticSource {
    seed: u64,
    rows: u64,
}

impl SyntheticSource {
    pub fn new(seed: u64, rows: u64) -> Self {
        Self { seed, rows: rows.max(1) }
    }

    /// Rows per table.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The rows at `offset` of the three tables (`offset < rows`), sharing
    /// `index`/`ind` = offset, as in the original tables.
    pub fn round(&self, offset: u64) -> Round {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        // One independent stream per row: rows are reproducible in any order.
        rng.set_stream(offset);
        let ind = offset as i64;
        let pin = pin_row(&mut rng, ind);
        let geo = geo_row(&mut rng, ind);
        let user = user_row(&mut rng, ind);
        Round { pin, geo, user }
    }

    /// Rounds the way the original emulator draws them: a random row offset
    /// each time, so rows repeat.
    pub fn random_rounds(self, offset_seed: u64) -> impl Iterator<Item = Round> {
        random_offsets(offset_seed, self.rows).map(move |offset| self.round(offset))
    }
}

/// Row offsets the way the original emulator draws them: uniformly at
/// random below `rows`, so rows repeat. Seeded, for reproducible runs.
pub fn random_offsets(offset_seed: u64, rows: u64) -> impl Iterator<Item = u64> {
    let mut rng = ChaCha8Rng::seed_from_u64(offset_seed);
    let rows = rows.max(1);
    std::iter::repeat_with(move || rng.random_range(0..rows))
}

/// Write rounds straight into the S3 sink's layout (partition 0 of each
/// topic, `flush_size` records per object), as if they had gone through
/// Kafka and the sink: input for the batch job's tests and benchmarks
/// without the cost of the whole path. Returns the rounds written.
pub fn write_sink_layout(
    dir: &std::path::Path,
    names: &contract::Names,
    rounds: impl Iterator<Item = Round>,
    flush_size: usize,
) -> std::io::Result<u64> {
    use std::io::Write;
    let flush_size = flush_size.max(1) as u64;
    // Every round adds one record to each topic, so all three objects of a
    // flush start at the same offset.
    let mut buffers: Vec<Vec<u8>> = vec![Vec::new(); Kind::ALL.len()];
    let (mut written, mut flushed) = (0u64, 0u64);
    let flush = |buffers: &mut Vec<Vec<u8>>, start: u64| -> std::io::Result<()> {
        for (kind, buf) in Kind::ALL.into_iter().zip(buffers.iter_mut()) {
            let path = dir.join(contract::object_key(&names.topic(kind), 0, start as i64));
            std::fs::create_dir_all(path.parent().expect("keys have directories"))?;
            std::fs::write(path, &buf)?;
            buf.clear();
        }
        Ok(())
    };
    for round in rounds {
        for (kind, buf) in Kind::ALL.into_iter().zip(buffers.iter_mut()) {
            serde_json::to_writer(&mut *buf, &round.value(kind)).expect("records serialise");
            buf.write_all(b"\n")?;
        }
        written += 1;
        if written - flushed == flush_size {
            flush(&mut buffers, flushed)?;
            flushed = written;
        }
    }
    if written > flushed {
        flush(&mut buffers, flushed)?;
    }
    Ok(written)
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    rng.random_bool(p)
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().expect("non-empty list")
}

fn phrase(rng: &mut ChaCha8Rng, words: std::ops::Range<usize>) -> String {
    let words = rng.random_range(words);
    (0..words).map(|_| pick(rng, WORDS)).collect::<Vec<_>>().join(" ")
}

fn follower_count(rng: &mut ChaCha8Rng) -> String {
    let roll: f64 = rng.random();
    match roll {
        r if r < 0.30 => rng.random_range(0..1000).to_string(),
        r if r < 0.80 => format!("{}k", rng.random_range(1..1000)),
        // Rare, but the cleaning rule must honour a decimal mantissa.
        r if r < 0.85 => format!("{}.{}k", rng.random_range(1..100), rng.random_range(1..10)),
        r if r < 0.93 => format!("{}M", rng.random_range(1..10)),
        _ => format!("{}.{}M", rng.random_range(1..10), rng.random_range(1..10)),
    }
}

fn hex(rng: &mut ChaCha8Rng, len: usize) -> String {
    (0..len).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap()).collect()
}

fn pin_row(rng: &mut ChaCha8Rng, index: i64) -> Pin {
    let category = pick(rng, CATEGORIES);
    let kind_roll: f64 = rng.random();
    let is_image_or_video = match kind_roll {
        r if r < 0.82 => "image",
        r if r < 0.95 => "video",
        _ => "multi-video(story page format)",
    };
    let story = is_image_or_video.starts_with("multi-video");

    // Poster name and follower count fail together in the original source.
    let user_info_error = chance(rng, 0.015);
    let (poster_name, follower_count) = if user_info_error {
        (placeholders::USER_INFO_ERROR.to_string(), placeholders::USER_INFO_ERROR.to_string())
    } else if chance(rng, 0.004) {
        (pick(rng, POSTERS).to_string(), String::new())
    } else {
        (pick(rng, POSTERS).to_string(), follower_count(rng))
    };

    let title = if chance(rng, 0.01) {
        placeholders::NO_TITLE.to_string()
    } else if chance(rng, 0.003) {
        String::new()
    } else {
        let mut t = phrase(rng, 3..8);
        t.push_str(&format!(" {category}"));
        t
    };

    let description = if story && chance(rng, 0.6) {
        placeholders::DESCRIPTION_STORY.to_string()
    } else if chance(rng, 0.025) {
        placeholders::DESCRIPTION_NONE.to_string()
    } else if chance(rng, 0.005) {
        placeholders::DESCRIPTION_UNTITLED.to_string()
    } else if chance(rng, 0.003) {
        String::new()
    } else {
        phrase(rng, 6..20)
    };

    let tag_list = if chance(rng, 0.01) {
        placeholders::NO_TAGS.to_string()
    } else {
        (0..rng.random_range(3..10)).map(|_| format!("{} {}", pick(rng, WORDS), category.replace('-', " "))).collect::<Vec<_>>().join(",")
    };

    let image_error = chance(rng, 0.01);
    let image_src = if image_error {
        placeholders::IMAGE_SRC_ERROR.to_string()
    } else {
        format!("https://i.pinimg.com/originals/{}/{}/{}/{}.jpg", hex(rng, 2), hex(rng, 2), hex(rng, 2), hex(rng, 32))
    };

    let mut id_bytes = [0u8; 16];
    rng.fill(&mut id_bytes);
    Pin {
        index,
        unique_id: uuid::Builder::from_random_bytes(id_bytes).into_uuid().to_string(),
        title,
        description,
        poster_name,
        follower_count,
        tag_list,
        is_image_or_video: is_image_or_video.to_string(),
        image_src,
        downloaded: if image_error { 0 } else { 1 },
        save_location: format!("Local save in /data/{category}"),
        category: category.to_string(),
    }
}

fn datetime_between(rng: &mut ChaCha8Rng, from: (i32, u32, u32), to: (i32, u32, u32)) -> String {
    let start = NaiveDate::from_ymd_opt(from.0, from.1, from.2).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let end = NaiveDate::from_ymd_opt(to.0, to.1, to.2).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let span = (end - start).num_seconds();
    let at: NaiveDateTime = start + Duration::seconds(rng.random_range(0..span));
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn geo_row(rng: &mut ChaCha8Rng, ind: i64) -> Geo {
    Geo {
        ind,
        timestamp: datetime_between(rng, (2015, 1, 1), (2023, 1, 1)),
        latitude: round4(rng.random_range(-90.0..90.0)),
        longitude: round4(rng.random_range(-180.0..180.0)),
        country: pick(rng, COUNTRIES).to_string(),
    }
}

fn user_row(rng: &mut ChaCha8Rng, ind: i64) -> User {
    let age_roll: f64 = rng.random();
    let age = match age_roll {
        r if r < 0.35 => rng.random_range(18..=24),
        r if r < 0.70 => rng.random_range(25..=35),
        r if r < 0.90 => rng.random_range(36..=50),
        _ => rng.random_range(51..=75),
    };
    // Most users joined 2015-2017 in the original; a tail reaches 2020.
    let date_joined = if chance(rng, 0.9) {
        datetime_between(rng, (2015, 1, 1), (2018, 1, 1))
    } else {
        datetime_between(rng, (2018, 1, 1), (2021, 1, 1))
    };
    User { ind, first_name: pick(rng, FIRST_NAMES).to_string(), last_name: pick(rng, LAST_NAMES).to_string(), age, date_joined }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_reproducible_and_share_ind() {
        let a = SyntheticSource::new(7, 100);
        let b = SyntheticSource::new(7, 100);
        for offset in [0, 5, 99] {
            let r = a.round(offset);
            assert_eq!(r, b.round(offset));
            assert_eq!(r.pin.index, offset as i64);
            assert_eq!(r.geo.ind, offset as i64);
            assert_eq!(r.user.ind, offset as i64);
        }
        assert_ne!(a.round(1), SyntheticSource::new(8, 100).round(1));
    }

    #[test]
    fn every_placeholder_occurs_at_a_realistic_rate() {
        use placeholders::*;
        let src = SyntheticSource::new(42, ORIGINAL_TABLE_ROWS);
        let rows: Vec<_> = (0..ORIGINAL_TABLE_ROWS).map(|o| src.round(o).pin).collect();
        let rate = |f: &dyn Fn(&Pin) -> bool| rows.iter().filter(|p| f(p)).count() as f64 / rows.len() as f64;
        let checks: [(&str, f64); 9] = [
            ("story description", rate(&|p| p.description == DESCRIPTION_STORY)),
            ("no description", rate(&|p| p.description == DESCRIPTION_NONE)),
            ("untitled", rate(&|p| p.description == DESCRIPTION_UNTITLED)),
            ("user info error", rate(&|p| p.follower_count == USER_INFO_ERROR && p.poster_name == USER_INFO_ERROR)),
            ("image src error", rate(&|p| p.image_src == IMAGE_SRC_ERROR)),
            ("no tags", rate(&|p| p.tag_list == NO_TAGS)),
            ("no title", rate(&|p| p.title == NO_TITLE)),
            ("empty title", rate(&|p| p.title.is_empty())),
            ("empty follower count", rate(&|p| p.follower_count.is_empty())),
        ];
        for (name, r) in checks {
            assert!(r > 0.0005 && r < 0.1, "{name}: rate {r}");
        }
        // follower_count forms: plain digits, k, M and decimal mantissas.
        assert!(rows.iter().any(|p| p.follower_count.ends_with('k') && p.follower_count.contains('.')));
        assert!(rows.iter().any(|p| p.follower_count.ends_with('M')));
        assert!(rows.iter().any(|p| p.follower_count.chars().all(|c| c.is_ascii_digit()) && !p.follower_count.is_empty()));
    }

    #[test]
    fn datetimes_use_the_canonical_form() {
        let r = SyntheticSource::new(1, 10).round(3);
        for s in [&r.geo.timestamp, &r.user.date_joined] {
            assert!(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").is_ok(), "{s}");
        }
    }

    #[test]
    fn sink_layout_holds_every_round_once_in_offset_named_objects() {
        let dir = tempfile::tempdir().unwrap();
        let names = contract::Names::new("abc").unwrap();
        let rounds: Vec<Round> = SyntheticSource::new(3, 50).random_rounds(9).take(5).collect();
        assert_eq!(write_sink_layout(dir.path(), &names, rounds.clone().into_iter(), 2).unwrap(), 5);
        for kind in Kind::ALL {
            let topic = names.topic(kind);
            let mut lines = Vec::new();
            for (start, count) in [(0, 2), (2, 2), (4, 1)] {
                let path = dir.path().join(contract::object_key(&topic, 0, start));
                let text = std::fs::read_to_string(&path).unwrap();
                assert_eq!(text.lines().count(), count, "{}", path.display());
                assert!(text.ends_with('\n'));
                lines.extend(text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()));
            }
            let want: Vec<_> = rounds.iter().map(|r| r.value(kind)).collect();
            assert_eq!(lines, want, "{kind}");
        }
    }
}
