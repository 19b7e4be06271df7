//! Confinement of what a process may execute, and nothing else: how orch runs git
//! (`orch git-exec`, [`crate::git`]'s runner). Landlock handles only the execute right here, so
//! reads, writes, signals and the network of the process are as they were; `execve` of a file
//! (a program, the interpreter a script names, an ELF program's loader) succeeds only beneath
//! one of the allowed paths, for the process and everything it starts.

use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, path_beneath_rules,
};

/// Confines the current process (and everything it starts from now on) to executing files
/// beneath `allow` (files or directories, each resolved as given: a rule on a link's target).
/// An error when the kernel cannot enforce it: nothing is then confined.
pub(crate) fn restrict_exec(allow: &[PathBuf]) -> Result<(), String> {
    let why = |e: landlock::RulesetError| format!("cannot confine the process (Landlock): {e}");
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::Execute)
        .map_err(why)?
        .create()
        .map_err(why)?
        .add_rules(path_beneath_rules(allow, AccessFs::Execute))
        .map_err(why)?
        .restrict_self()
        .map_err(why)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err("cannot confine the process: this kernel does not enforce Landlock".into());
    }
    Ok(())
}

/// Whether this kernel can confine execution ([`restrict_exec`]): Landlock's first ABI.
pub(crate) fn exec_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(ABI::V1) & AccessFs::Execute)
            .and_then(|r| r.create())
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_is_a_right_of_the_first_abi() {
        assert_eq!(exec_supported(), crate::sandbox::supported());
    }
}
