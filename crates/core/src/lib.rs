//! Types every door and stage of the pipeline shares. Depends on nothing of ours.
#![forbid(unsafe_code)]

mod principal;

pub use principal::{AuthMethod, PresentedToken, Principal};
