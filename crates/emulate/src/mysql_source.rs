//! The MySQL/MariaDB source of `pipeline emulate`: the original emulator's
//! database (`pinterest_data`, `geolocation_data`, `user_data`), read the
//! way it read it: `SELECT * FROM <table> LIMIT <offset>, 1` for one random
//! offset per round. Also `seed`, which creates those tables and fills them
//! from the synthetic source, so a local database can stand in for the
//! original one.

use mysql_async::prelude::*;
use mysql_async::{Conn, Opts, Pool, Row, Value};

use crate::generate::SyntheticSource;
use contract::{Geo, Kind, Pin, Round, User};

#[derive(Debug, thiserror::Error)]
pub enum MysqlSourceError {
    #[error("`{0}` is not a MySQL URL; expected mysql://user:password@host:port/database (TLS: add ?require_ssl=true)")]
    BadUrl(String),
    #[error("MySQL at {url}: {source}")]
    Server { url: String, source: mysql_async::Error },
    #[error("MySQL at {url}: table `{table}` is empty; fill it, or create the tables with `pipeline seed-mysql`")]
    EmptyTable { url: String, table: &'static str },
    #[error("MySQL at {url}: `{table}` has no row at offset {offset} (it shrank while the emulator ran?)")]
    NoRow { url: String, table: &'static str, offset: u64 },
    #[error("MySQL at {url}: `{table}` row at offset {offset}, column `{column}`: {problem}")]
    Column { url: String, table: &'static str, offset: u64, column: &'static str, problem: String },
    #[error("MySQL at {url}: table `{table}` already has {rows} rows; pass --replace to empty it first")]
    NotEmpty { url: String, table: &'static str, rows: u64 },
}

/// The URL with its password replaced, for messages and logs.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "<unparsable URL>".into(),
    }
}

/// A connection pool to the source database and its row count.
#[derive(Debug, Clone)]
pub struct MysqlSource {
    pool: Pool,
    url: String,
    rows: u64,
}

impl MysqlSource {
    /// Connect and count rows: offsets are drawn below the smallest of the
    /// three tables, so every round finds its three rows.
    pub async fn connect(url: &str) -> Result<Self, MysqlSourceError> {
        let pool = pool(url)?;
        let shown = redacted(url);
        let mut conn = pool.get_conn().await.map_err(|e| server(&shown, e))?;
        let mut rows = u64::MAX;
        for kind in Kind::ALL {
            let table = kind.source_table();
            let n = count(&mut conn, table).await.map_err(|e| server(&shown, e))?;
            if n == 0 {
                return Err(MysqlSourceError::EmptyTable { url: shown, table });
            }
            rows = rows.min(n);
        }
        Ok(Self { pool, url: shown, rows })
    }

    /// Rows in the smallest table.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The rows at `offset` of the three tables.
    pub async fn round(&self, offset: u64) -> Result<Round, MysqlSourceError> {
        let mut conn = self.pool.get_conn().await.map_err(|e| server(&self.url, e))?;
        let mut row = async |kind: Kind| -> Result<RowAt, MysqlSourceError> {
            let table = kind.source_table();
            // The original's query, word for word (no ORDER BY: InnoDB scans
            // in primary key order).
            let found: Option<Row> =
                conn.exec_first(format!("SELECT * FROM {table} LIMIT ?, 1"), (offset,)).await.map_err(|e| server(&self.url, e))?;
            let row = found.ok_or_else(|| MysqlSourceError::NoRow { url: self.url.clone(), table, offset })?;
            Ok(RowAt { row, table, offset, url: &self.url })
        };
        let pin = row(Kind::Pin).await?.pin()?;
        let geo = row(Kind::Geo).await?.geo()?;
        let user = row(Kind::User).await?.user()?;
        Ok(Round { pin, geo, user })
    }

    pub async fn close(self) {
        let _ = self.pool.disconnect().await;
    }
}

fn pool(url: &str) -> Result<Pool, MysqlSourceError> {
    let opts = Opts::from_url(url).map_err(|_| MysqlSourceError::BadUrl(redacted(url)))?;
    Ok(Pool::new(opts))
}

fn server(url: &str, source: mysql_async::Error) -> MysqlSourceError {
    MysqlSourceError::Server { url: url.to_string(), source }
}

async fn count(conn: &mut Conn, table: &str) -> Result<u64, mysql_async::Error> {
    Ok(conn.query_first::<u64, _>(format!("SELECT COUNT(*) FROM {table}")).await?.unwrap_or(0))
}

/// A fetched row with what is needed to say where a bad value sits.
struct RowAt<'a> {
    row: Row,
    table: &'static str,
    offset: u64,
    url: &'a str,
}

impl RowAt<'_> {
    fn value(&self, column: &'static str) -> Result<&Value, MysqlSourceError> {
        let index = self.row.columns_ref().iter().position(|c| c.name_str() == column);
        let value = index.and_then(|i| self.row.as_ref(i));
        value.ok_or_else(|| self.problem(column, "no such column".into()))
    }

    fn problem(&self, column: &'static str, problem: String) -> MysqlSourceError {
        MysqlSourceError::Column { url: self.url.to_string(), table: self.table, offset: self.offset, column, problem }
    }

    /// Text as the original emulator's `json.dumps(default=str)` sends it:
    /// numbers as their digits, datetimes as `YYYY-MM-DD HH:MM:SS`.
    fn text(&self, column: &'static str) -> Result<String, MysqlSourceError> {
        match self.value(column)? {
            Value::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| self.problem(column, "not valid UTF-8".into())),
            Value::Int(i) => Ok(i.to_string()),
            Value::UInt(u) => Ok(u.to_string()),
            Value::Float(f) => Ok(f.to_string()),
            Value::Double(d) => Ok(d.to_string()),
            Value::Date(y, mo, d, h, mi, s, us) => Ok(datetime_text(*y, *mo, *d, *h, *mi, *s, *us)),
            Value::NULL => Err(self.problem(column, "NULL where the records need a value".into())),
            other => Err(self.problem(column, format!("unexpected value {other:?}"))),
        }
    }

    fn integer(&self, column: &'static str) -> Result<i64, MysqlSourceError> {
        match self.value(column)? {
            Value::Int(i) => Ok(*i),
            Value::UInt(u) => i64::try_from(*u).map_err(|_| self.problem(column, format!("{u} does not fit in a 64-bit integer"))),
            Value::Bytes(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| self.problem(column, format!("`{}` is not an integer", String::from_utf8_lossy(b)))),
            other => Err(self.problem(column, format!("expected an integer, found {other:?}"))),
        }
    }

    fn float(&self, column: &'static str) -> Result<f64, MysqlSourceError> {
        match self.value(column)? {
            Value::Double(d) => Ok(*d),
            Value::Float(f) => Ok(f64::from(*f)),
            Value::Int(i) => Ok(*i as f64),
            Value::UInt(u) => Ok(*u as f64),
            // DECIMAL columns come as text.
            Value::Bytes(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| self.problem(column, format!("`{}` is not a number", String::from_utf8_lossy(b)))),
            other => Err(self.problem(column, format!("expected a number, found {other:?}"))),
        }
    }

    fn pin(&self) -> Result<Pin, MysqlSourceError> {
        Ok(Pin {
            index: self.integer("index")?,
            unique_id: self.text("unique_id")?,
            title: self.text("title")?,
            description: self.text("description")?,
            poster_name: self.text("poster_name")?,
            follower_count: self.text("follower_count")?,
            tag_list: self.text("tag_list")?,
            is_image_or_video: self.text("is_image_or_video")?,
            image_src: self.text("image_src")?,
            downloaded: self.integer("downloaded")?,
            save_location: self.text("save_location")?,
            category: self.text("category")?,
        })
    }

    fn geo(&self) -> Result<Geo, MysqlSourceError> {
        Ok(Geo {
            ind: self.integer("ind")?,
            timestamp: self.text("timestamp")?,
            latitude: self.float("latitude")?,
            longitude: self.float("longitude")?,
            country: self.text("country")?,
        })
    }

    fn user(&self) -> Result<User, MysqlSourceError> {
        Ok(User {
            ind: self.integer("ind")?,
            first_name: self.text("first_name")?,
            last_name: self.text("last_name")?,
            age: self.integer("age")?,
            date_joined: self.text("date_joined")?,
        })
    }
}

/// Python's `str(datetime)`: microseconds only when there are some.
fn datetime_text(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8, us: u32) -> String {
    let base = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}");
    if us == 0 { base } else { format!("{base}.{us:06}") }
}

/// Column definitions of the original tables, in their column order.
fn create_table(kind: Kind) -> String {
    let columns = match kind {
        Kind::Pin => {
            "`index` INT NOT NULL PRIMARY KEY, unique_id VARCHAR(36) NOT NULL, title TEXT NOT NULL, \
             description TEXT NOT NULL, poster_name TEXT NOT NULL, follower_count VARCHAR(32) NOT NULL, \
             tag_list TEXT NOT NULL, is_image_or_video VARCHAR(64) NOT NULL, image_src TEXT NOT NULL, \
             downloaded INT NOT NULL, save_location TEXT NOT NULL, category VARCHAR(64) NOT NULL"
        }
        Kind::Geo => {
            "ind INT NOT NULL PRIMARY KEY, `timestamp` DATETIME NOT NULL, latitude DOUBLE NOT NULL, \
             longitude DOUBLE NOT NULL, country VARCHAR(128) NOT NULL"
        }
        Kind::User => {
            "ind INT NOT NULL PRIMARY KEY, first_name VARCHAR(64) NOT NULL, last_name VARCHAR(64) NOT NULL, \
             age INT NOT NULL, date_joined DATETIME NOT NULL"
        }
    };
    format!("CREATE TABLE IF NOT EXISTS {} ({columns}) CHARACTER SET utf8mb4", kind.source_table())
}

/// The values of one table's row, in column order.
fn row_values(round: &Round, kind: Kind) -> Vec<Value> {
    match round.value(kind) {
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(_, v)| match v {
                serde_json::Value::String(s) => Value::from(s),
                serde_json::Value::Number(n) if n.is_i64() => Value::from(n.as_i64()),
                serde_json::Value::Number(n) => Value::from(n.as_f64()),
                other => Value::from(other.to_string()),
            })
            .collect(),
        _ => unreachable!("records serialise to objects"),
    }
}

/// Rows per INSERT statement (placeholders stay far below MySQL's 65,535).
const INSERT_CHUNK: u64 = 500;

/// Create the three tables (original column order and types) and fill
/// rows `0..source.rows()` from the synthetic source, so that the row at
/// offset `i` has `index`/`ind` `i`. Refuses non-empty tables unless
/// `replace`. Returns rows written per table.
pub async fn seed(url: &str, source: &SyntheticSource, replace: bool) -> Result<u64, MysqlSourceError> {
    let pool = pool(url)?;
    let shown = redacted(url);
    let mut conn = pool.get_conn().await.map_err(|e| server(&shown, e))?;
    for kind in Kind::ALL {
        let table = kind.source_table();
        conn.query_drop(create_table(kind)).await.map_err(|e| server(&shown, e))?;
        let rows = count(&mut conn, table).await.map_err(|e| server(&shown, e))?;
        if rows > 0 && !replace {
            return Err(MysqlSourceError::NotEmpty { url: shown, table, rows });
        }
        conn.query_drop(format!("DELETE FROM {table}")).await.map_err(|e| server(&shown, e))?;
    }
    let mut start = 0;
    while start < source.rows() {
        let end = (start + INSERT_CHUNK).min(source.rows());
        let rounds: Vec<Round> = (start..end).map(|offset| source.round(offset)).collect();
        let mut tx = conn.start_transaction(Default::default()).await.map_err(|e| server(&shown, e))?;
        for kind in Kind::ALL {
            let values: Vec<Value> = rounds.iter().flat_map(|r| row_values(r, kind)).collect();
            let width = values.len() / rounds.len();
            let one = format!("({})", vec!["?"; width].join(","));
            let statement = format!("INSERT INTO {} VALUES {}", kind.source_table(), vec![one; rounds.len()].join(","));
            tx.exec_drop(statement, values).await.map_err(|e| server(&shown, e))?;
        }
        tx.commit().await.map_err(|e| server(&shown, e))?;
        start = end;
    }
    drop(conn);
    let _ = pool.disconnect().await;
    Ok(source.rows())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_shown() {
        let shown = redacted("mysql://admin:s3cr3t-pass@db.example.com:3306/pinterest");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("admin:***@db.example.com"), "{shown}");
        assert_eq!(redacted("not a url at all"), "<unparsable URL>");
    }

    #[test]
    fn bad_url_names_the_expected_form_without_the_password() {
        let err = pool("postgres://u:topsecret@h/db").unwrap_err().to_string();
        assert!(err.contains("mysql://user:password@host:port/database"), "{err}");
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn datetimes_as_python_prints_them() {
        assert_eq!(datetime_text(2019, 3, 7, 4, 5, 6, 0), "2019-03-07 04:05:06");
        assert_eq!(datetime_text(2019, 3, 7, 4, 5, 6, 120), "2019-03-07 04:05:06.000120");
    }

    #[test]
    fn insert_values_follow_the_table_column_order() {
        let round = SyntheticSource::new(1, 10).round(3);
        let pin = row_values(&round, Kind::Pin);
        assert_eq!(pin.len(), 12);
        assert_eq!(pin[0], Value::from(3i64));
        assert_eq!(pin[1], Value::from(round.pin.unique_id.clone()));
        let geo = row_values(&round, Kind::Geo);
        assert_eq!(geo[2], Value::from(round.geo.latitude));
        assert!(create_table(Kind::Geo).contains("ind INT NOT NULL PRIMARY KEY, `timestamp` DATETIME"));
    }
}
