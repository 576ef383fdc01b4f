//! The store's tests run on both databases: SQLite always, PostgreSQL (a throwaway server,
//! `#[ignore]`d so a plain `cargo test` needs no PostgreSQL) from `scripts/test.sh`.

use crate::throwaway::Postgres;
use crate::{Location, Store};

/// A fresh, empty database of one kind, deleted when dropped.
pub(crate) struct TestDb {
    pub location: Location,
    _sqlite: Option<tempfile::TempDir>,
    _postgres: Option<Postgres>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        TestDb { location: Location::Sqlite(dir.path().join("p.db")), _sqlite: Some(dir), _postgres: None }
    }

    pub fn postgres() -> TestDb {
        let server = Postgres::start();
        TestDb { location: Location::Postgres(server.url().to_owned()), _sqlite: None, _postgres: Some(server) }
    }

    pub async fn open(&self) -> Store {
        Store::open(&self.location).await.unwrap()
    }
}

/// Declares each `async fn name(db: &TestDb) { ... }` as two tests, `name::sqlite` and
/// `name::postgres`.
macro_rules! on_both {
    ($(async fn $name:ident($db:ident: &TestDb) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::testdb::TestDb;

            async fn run($db: &TestDb) $body

            #[tokio::test]
            async fn sqlite() {
                run(&TestDb::sqlite()).await
            }

            #[tokio::test]
            #[ignore = "needs PostgreSQL: run scripts/test.sh"]
            async fn postgres() {
                run(&TestDb::postgres()).await
            }
        }
    )*};
}
pub(crate) use on_both;
