//! The `pipeline` binary's library: the commands that read across
//! components: `status`, `topics` and `verify`. Each component is its own crate
//! (`crates/<component>`, see docs/ARCHITECTURE.md) and is used through it.

pub mod status;
pub mod topics;
#[cfg(feature = "batch")]
pub mod verify;
