//! Confinement of agents with Landlock: the rules a confined process runs under, and applying
//! them to the current process (`orch sandbox-exec`, which then execs the agent).
//!
//! Landlock is an allow-list: the process may write beneath the `write` paths and read beneath
//! every path granted for reading. "Read everywhere except `deny_read`" is made of rules on the
//! siblings of each denied path and of its parent directories, from `/` down
//! ([`read_roots`]): an entry created later in one of those parent directories is not readable.
//! The network is not confined.

use std::collections::BTreeSet;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, path_beneath_rules,
};

/// The Landlock ABI orch's rules are written for (file truncation handled since V3).
const ABI_USED: ABI = ABI::V3;

/// What a confined process may do with files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Writable (and readable) beneath these.
    pub write: Vec<PathBuf>,
    /// Not readable beneath these (everything else is).
    pub deny_read: Vec<PathBuf>,
}

/// Whether this kernel confines processes with Landlock (checked without confining this one).
pub fn supported() -> bool {
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(|r| r.create())
        .is_ok()
}

/// Confines the current process (and everything it starts from now on) to `rules`.
pub fn restrict(rules: &Rules) -> Result<(), String> {
    let why = |e: landlock::RulesetError| format!("cannot confine the process (Landlock): {e}");
    let (roots, dirs) = read_roots(&rules.deny_read);
    let read = AccessFs::from_read(ABI_USED);
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_USED))
        .map_err(why)?
        .create()
        .map_err(why)?
        .add_rules(path_beneath_rules(&roots, read))
        .map_err(why)?
        // The parents of denied paths: listed, not read beneath.
        .add_rules(path_beneath_rules(&dirs, AccessFs::ReadDir))
        .map_err(why)?
        .add_rules(path_beneath_rules(
            &rules.write,
            AccessFs::from_all(ABI_USED),
        ))
        .map_err(why)?
        .restrict_self()
        .map_err(why)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err("cannot confine the process: this kernel does not enforce Landlock".into());
    }
    Ok(())
}

/// The paths granted for reading so that everything but `deny` is readable: `/` when nothing is
/// denied, else every entry of each parent directory of a denied path except the one on the
/// way to it. Also returns those parent directories (granted listing only).
pub fn read_roots(deny: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let deny: BTreeSet<PathBuf> = deny.iter().filter(|p| p.is_absolute()).cloned().collect();
    if deny.is_empty() {
        return (vec![PathBuf::from("/")], Vec::new());
    }
    // Every directory on the way from `/` to a denied path.
    let mut on_way: BTreeSet<PathBuf> = BTreeSet::new();
    for d in &deny {
        for a in d.ancestors().skip(1) {
            on_way.insert(a.to_path_buf());
        }
    }
    let mut roots = Vec::new();
    for dir in &on_way {
        if deny.iter().any(|d| dir.starts_with(d)) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !on_way.contains(&p) && !deny.contains(&p) {
                roots.push(p);
            }
        }
    }
    roots.sort();
    (roots, on_way.into_iter().collect())
}

/// The arguments of `orch sandbox-exec` that carry `rules`.
pub fn args(rules: &Rules) -> Vec<String> {
    let mut out = Vec::new();
    for p in &rules.write {
        out.push("--write".to_string());
        out.push(p.display().to_string());
    }
    for p in &rules.deny_read {
        out.push("--deny-read".to_string());
        out.push(p.display().to_string());
    }
    out
}

/// The devices every confined process may write: `/dev/null`, the terminal.
pub const DEVICES: [&str; 4] = ["/dev/null", "/dev/tty", "/dev/pts", "/dev/ptmx"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_denied_reads_everything() {
        assert_eq!(read_roots(&[]), (vec![PathBuf::from("/")], Vec::new()));
    }

    #[test]
    fn a_denied_path_leaves_its_siblings_and_its_parents_siblings() {
        let tmp = std::env::temp_dir().join(format!("orch-sandbox-roots-{}", std::process::id()));
        let home = tmp.join("home");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
        std::fs::create_dir_all(home.join("src")).expect("mkdir");
        std::fs::write(home.join(".bashrc"), "").expect("write");
        std::fs::write(tmp.join("other"), "").expect("write");
        let (roots, dirs) = read_roots(&[home.join(".ssh"), home.join(".aws")]);
        assert!(roots.contains(&home.join("src")), "{roots:?}");
        assert!(roots.contains(&home.join(".bashrc")), "{roots:?}");
        assert!(roots.contains(&tmp.join("other")), "{roots:?}");
        assert!(!roots.iter().any(|r| home.starts_with(r)), "{roots:?}");
        assert!(!roots.contains(&home.join(".ssh")), "{roots:?}");
        assert!(roots.contains(&PathBuf::from("/usr")), "{roots:?}");
        assert!(
            dirs.contains(&home) && dirs.contains(&PathBuf::from("/")),
            "{dirs:?}"
        );
        std::fs::remove_dir_all(&tmp).expect("clean");
    }
}
