//! Compiles the guard settings, loading the deeper injection tier (a fine-tuned MiniLM, crate
//! `portcullis-guard-minilm`) when `guards.injection.deep` asks for it. The guard crate does no
//! I/O, so reading the model from disk happens here.
//!
//! A loaded model is kept for the life of the process, keyed by its files, so validating a
//! config and then building the pipeline from it, or a hot reload that keeps the same model,
//! does not read 90 MB again.

use portcullis_guard::injection::{DeepConfig, SecondOpinion};
use portcullis_guard::{ConfigError, Guard, GuardConfig};
use portcullis_guard_minilm::InjectionTier;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The files a tier was loaded from: the base model folder and the fine-tuned file, if not
/// the built-in one.
type Key = (PathBuf, Option<PathBuf>);

static LOADED: Mutex<Option<(Key, Arc<InjectionTier>)>> = Mutex::new(None);

/// Compiles `settings` into a guard, with the deeper tier when they ask for it.
pub fn compile_guard(settings: &GuardConfig) -> Result<Guard, ConfigError> {
    let opinion = match &settings.injection.deep {
        Some(deep) => Some(load(deep)? as Arc<dyn SecondOpinion>),
        None => None,
    };
    Guard::with_second_opinion(settings, opinion)
}

/// The base model folder: the configured one, else `$PORTCULLIS_MINILM_DIR/model`, else
/// `~/.cache/portcullis/minilm/model` (where `scripts/minilm.sh` unpacks it).
pub fn model_dir(deep: &DeepConfig) -> PathBuf {
    match &deep.model {
        Some(path) => expand_home(path),
        None => std::env::var_os("PORTCULLIS_MINILM_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| expand_home("~/.cache/portcullis/minilm"))
            .join("model"),
    }
}

/// `~/x` is `$HOME/x`; other paths are taken as given (relative to the working directory).
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn load(deep: &DeepConfig) -> Result<Arc<InjectionTier>, ConfigError> {
    let key: Key = (model_dir(deep), deep.weights.as_deref().map(expand_home));
    // A poisoned lock only means a load panicked; the cache itself is still consistent.
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, tier)) = loaded.as_ref() {
        if *k == key {
            return Ok(tier.clone());
        }
    }
    let started = std::time::Instant::now();
    let tier = InjectionTier::load(&key.0, key.1.as_deref()).map_err(|e| {
        let field = if matches!(e, portcullis_guard_minilm::LoadError::Missing(_)) || key.1.is_none() {
            "injection.deep.model"
        } else {
            "injection.deep.weights"
        };
        ConfigError::new(field, e.to_string())
    })?;
    tracing::info!(
        model = %key.0.display(),
        ms = started.elapsed().as_millis() as u64,
        "loaded the deeper injection tier"
    );
    let tier = Arc::new(tier);
    *loaded = Some((key, tier.clone()));
    Ok(tier)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn a_missing_model_is_a_config_error_that_says_how_to_get_it() {
        let err = Config::parse("guards:\n  injection:\n    deep: { model: /nonexistent/minilm/model }\n").unwrap_err();
        let problem = err.problems.iter().find(|p| p.path == "guards.injection.deep.model").expect("a problem");
        assert!(problem.message.contains("scripts/minilm.sh"), "{}", problem.message);
        assert!(problem.message.contains("/nonexistent/minilm/model"), "{}", problem.message);
    }

    #[test]
    fn home_relative_paths_are_expanded() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(super::expand_home("~/m/model"), std::path::PathBuf::from(home).join("m/model"));
        assert_eq!(super::expand_home("/abs/model"), std::path::PathBuf::from("/abs/model"));
    }
}
