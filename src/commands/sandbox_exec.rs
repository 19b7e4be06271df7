//! `orch sandbox-exec --write P… --deny-read P… -- ARGV…` (hidden): how `orch up` confines an
//! agent or a check. It applies the Landlock rules to itself ([`crate::sandbox::restrict`]) and
//! becomes `ARGV` (`exec`: same process, same process group, same pid), which inherits them.
//! If the rules cannot be applied it runs nothing and exits 1.

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use anyhow::anyhow;

use crate::error::{CliError, CliResult, exit};
use crate::sandbox::{Rules, restrict};

pub fn run(rules: Rules, argv: &[String]) -> CliResult<u8> {
    let Some((program, args)) = argv.split_first() else {
        return Err(CliError::invalid(anyhow!(
            "`orch sandbox-exec` is run by `orch up`: `orch sandbox-exec --write P… -- ARGV…`"
        )));
    };
    restrict(&rules)
        .map_err(|e| CliError::new(exit::FAILURE, anyhow!("orch sandbox-exec: {e}")))?;
    let e = Command::new(program).args(args).exec();
    Err(CliError::new(
        exit::FAILURE,
        anyhow!("cannot run `{program}` in the sandbox: {e}"),
    ))
}
