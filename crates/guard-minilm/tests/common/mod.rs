use std::path::PathBuf;

/// The base model folder `scripts/minilm.sh` unpacks: `$PORTCULLIS_MINILM_DIR/model`,
/// by default `~/.cache/portcullis/minilm/model`.
pub fn base_dir() -> PathBuf {
    let root = std::env::var_os("PORTCULLIS_MINILM_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/portcullis/minilm")
    });
    let dir = root.join("model");
    assert!(dir.join("vocab.txt").exists(), "no base model in {}: run scripts/minilm.sh", dir.display());
    dir
}
