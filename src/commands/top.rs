//! `orch top`: the live view of the repository's run ([`crate::top`]).

use std::path::PathBuf;

use crate::error::CliResult;
use crate::workspace::{self, Selection};

pub(crate) fn run(manifest: Option<PathBuf>) -> CliResult<u8> {
    let ws = workspace::load(&Selection {
        manifest,
        plan: None,
    })?;
    crate::top::run(ws)
}
