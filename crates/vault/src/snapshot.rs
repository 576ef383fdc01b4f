//! The opened secrets a running gateway resolves references against.

use secrecy::SecretString;
use std::collections::HashMap;

/// Every secret of the vault at one version, opened. Debug output shows names only.
#[derive(Default)]
pub struct Secrets {
    version: i64,
    values: HashMap<String, SecretString>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.values.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Secrets").field("version", &self.version).field("names", &names).finish()
    }
}

impl Secrets {
    pub fn empty(version: i64) -> Secrets {
        Secrets { version, values: HashMap::new() }
    }

    pub fn insert(&mut self, name: String, value: SecretString) {
        self.values.insert(name, value);
    }

    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.values.get(name)
    }

    /// The vault version these values were read at.
    pub fn version(&self) -> i64 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
