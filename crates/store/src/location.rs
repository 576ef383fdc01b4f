//! Where the database lives: a SQLite file, or a PostgreSQL server that replicas share.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where the database lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// An embedded SQLite file, created on first open.
    Sqlite(PathBuf),
    /// `postgres://user:password@host:port/database[?sslmode=require]`.
    Postgres(String),
}

impl Location {
    /// Reads `url`: `postgres://` or `postgresql://` for PostgreSQL, `sqlite://PATH` or a
    /// plain path for SQLite.
    pub fn parse(url: &str) -> Result<Location, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            url::Url::parse(url).map_err(|e| format!("`{}` is not a valid URL: {e}", mask(url)))?;
            Ok(Location::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(Location::Sqlite(PathBuf::from(path)))
        } else if url.contains("://") {
            Err(format!(
                "`{}` is neither a PostgreSQL URL (postgres://user:password@host/database) nor a SQLite file",
                mask(url)
            ))
        } else {
            Ok(Location::Sqlite(PathBuf::from(url)))
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }

    /// What to check when the database cannot be opened.
    pub(crate) fn open_hint(&self) -> &'static str {
        match self {
            Location::Sqlite(_) => {
                "check that its folder exists and is writable (set store.path to choose another file)"
            }
            Location::Postgres(_) => {
                "check that the server is running and reachable and that the URL's user, password and database are right (store.url or store.url_env)"
            }
        }
    }
}

/// A URL with its password (in the user part or a `password=` parameter) replaced by `***`,
/// for messages and logs.
fn mask(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Unparseable: show no more than the scheme.
        return url.split("://").next().map_or_else(String::new, |scheme| format!("{scheme}://…"));
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "***".to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(url) => f.write_str(&mask(url)),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Sqlite(path.to_owned())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Sqlite(path)
    }
}

impl From<&PathBuf> for Location {
    fn from(path: &PathBuf) -> Location {
        Location::Sqlite(path.clone())
    }
}

impl From<&Location> for Location {
    fn from(location: &Location) -> Location {
        location.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let at = Location::parse("postgres://app:hunter2@db.internal:5432/portcullis").unwrap();
        assert_eq!(at.to_string(), "postgres://app:***@db.internal:5432/portcullis");
        assert!(!format!("{at:?}").contains("hunter2"));
        let at = Location::parse("postgresql://db/p?user=app&password=hunter2&sslmode=require").unwrap();
        assert!(!at.to_string().contains("hunter2"), "{at}");
        assert!(at.to_string().contains("sslmode=require"), "{at}");
        let err = Location::parse("mysql://root:hunter2@db/p").unwrap_err();
        assert!(!err.contains("hunter2") && err.contains("neither"), "{err}");
    }

    #[test]
    fn paths_are_sqlite() {
        assert_eq!(Location::parse("data/p.db").unwrap(), Location::Sqlite("data/p.db".into()));
        assert_eq!(Location::parse("sqlite:///var/p.db").unwrap(), Location::Sqlite("/var/p.db".into()));
    }
}
