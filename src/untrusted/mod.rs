//! What orch takes in from places an agent or a landed branch could have shaped, and what it
//! shows of it: the one bounded reader of such files ([`read`]: no link followed, regular files
//! only, never waiting on a FIFO or a device, never more than a limit per kind of file), and the
//! one way such text reaches a terminal ([`text`]: control characters shown escaped); what
//! `/proc` says of a process, whose command name is its own ([`procfs`]); the one remover of
//! a tree an agent could have filled ([`remove`]: bounded in time, no depth limit, no link
//! followed, the rest left in orch's trash for the next removal).
//!
//! Writes that never follow a link are [`crate::links`]'.

pub(crate) mod jsonc;
pub(crate) mod procfs;
pub(crate) mod read;
pub(crate) mod remove;
pub(crate) mod text;

pub(crate) use text::{Shown, escaped, escaped_lines, json_safe};
