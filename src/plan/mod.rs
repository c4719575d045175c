//! Planning, without I/O. Both the custom resource and the re-sync decide here what to write;
//! they only gather facts before and apply the result after.
//!
//! - [`patch`]: the one patch that brings a stage's variables where a binding wants them, and
//!   the rule for letting a variable go (remove it only while it still holds what was written).
//! - [`bind`]: each variable's step in a `stagewire bind` or `unbind` (added, changed, adopted,
//!   removed, kept), read from the same patch the write sends.
//! - [`stage`]: the re-sync's plan for one stage: what to write, what to hold back and why,
//!   what cannot be resolved, and what the registry records.
//! - [`resolved`]: what a source resolved to, or why it did not: the facts the plans read.
//! - [`switch`]: the switch rule, whether a variable may move to a new load balancer or VPC
//!   link now, and how the variables of one binding move together.
//!
//! Nothing here does I/O or depends on the resolver: it is given the facts.

pub mod bind;
pub mod patch;
pub mod resolved;
pub mod stage;
pub mod switch;

pub use patch::{count_after, patch, Release};
