//! `orch pause|resume PLAN`, `orch retry|stop PLAN ID`: run control through the status files
//! ([`crate::control`]). A running `orch up` acts on the change within a second; without one,
//! the next `orch up` starts from it.

use std::path::PathBuf;

use super::output::{print_json, println_safe};
pub(crate) use crate::control::Request;
use crate::control::apply;
use crate::error::{CliResult, exit};
use crate::workspace::{self, Selection};

pub(crate) fn run(manifest: Option<PathBuf>, request: &Request, json: bool) -> CliResult<u8> {
    let ws = workspace::load(&Selection {
        manifest,
        plan: None,
    })?;
    let done = apply(&ws, request)?;
    if json {
        print_json(&done.json);
    } else {
        println_safe(&done.message);
    }
    Ok(exit::OK)
}
