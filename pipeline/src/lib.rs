//! The `pipeline` binary's library: the two commands that read across
//! components, `status` and `topics`. Each component is its own crate
//! (`crates/<component>`, see docs/ARCHITECTURE.md) and is used through it.

pub mod status;
pub mod topics;
