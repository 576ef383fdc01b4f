//! A throwaway PostgreSQL server for tests: a fresh cluster in a temporary folder, from the
//! PostgreSQL binaries Debian's `postgresql` package installs, listening on a free local port
//! and removed when dropped. PostgreSQL refuses to run as root, so as root the cluster runs as
//! the `postgres` user the package creates.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running PostgreSQL server, stopped and deleted on drop.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    url: String,
}

impl Postgres {
    /// Starts a new cluster. Panics with what to install when PostgreSQL is missing: this is
    /// for tests, which should fail loudly rather than pass without a database.
    pub fn start() -> Postgres {
        let bin = binaries().unwrap_or_else(|| {
            panic!("PostgreSQL is not installed: scripts/test-deps.sh installs it (Debian: apt-get install postgresql), or set PORTCULLIS_PG_BIN to the folder holding initdb and pg_ctl")
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free local port");
        let dir = std::env::temp_dir().join(format!("portcullis-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary folder for PostgreSQL");
        let pg = Postgres { dir, bin, url: format!("postgres://postgres@127.0.0.1:{port}/postgres") };
        if is_root() {
            pg.run(Command::new("chown").args(["-R", "postgres:"]).arg(&pg.dir), "chown");
        }
        let data = pg.dir.join("data");
        pg.run(
            pg.as_owner("initdb").arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]),
            "initdb",
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            pg.dir.display()
        );
        pg.run(
            pg.as_owner("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(pg.dir.join("log"))
                .args(["-w", "-t", "60", "start"]),
            "pg_ctl start",
        );
        pg
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one SQL statement with `psql`, as an operator with database access would
    /// (tests use it to tamper with stored data); returns its output.
    pub fn psql(&self, statement: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.url, "-c", statement])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(out.status.success(), "psql {statement}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn as_owner(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn run(&self, command: &mut Command, what: &str) {
        let out = command.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            panic!(
                "{what} failed: {}{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .as_owner("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The folder with `initdb` and `pg_ctl`: `PORTCULLIS_PG_BIN`, else the newest
/// `/usr/lib/postgresql/N/bin` (Debian keeps them off the PATH), else the PATH.
fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PORTCULLIS_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .max_by_key(|(version, _)| *version);
    if let Some((_, bin)) = newest {
        return Some(bin);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(Path::new)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .map(Path::to_owned)
}
