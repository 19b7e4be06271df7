//! Confinement of agents with Landlock: the rules a confined process runs under, and applying
//! them to the current process (`orch sandbox-exec`, which then execs the agent).
//!
//! Landlock is an allow-list: the process may write beneath the `write` paths and read beneath
//! every path granted for reading. "Read everywhere except `deny_read`" is made of rules on the
//! siblings of each denied path and of its parent directories, from `/` down
//! ([`read_roots`]): an entry created later in one of those parent directories is not readable.
//! The network is not confined.
//!
//! The rules are written for Landlock ABI 6 (Linux 6.12) and applied best-effort: on an older
//! kernel what it lacks is not controlled ([`abi`] says which ABI the kernel offers,
//! [`uncontrolled`] what is then left out). ABI 6 adds, over the file rules: no signal to a
//! process outside the sandbox (`orch up`, the user's shell), no connection to an abstract unix
//! socket made outside it (ABI 6), no `ioctl` on a device opened through a path not granted
//! for writing (ABI 5).

mod exec;
mod mounts;
mod private;
mod tmp;
mod writable;

pub(crate) use exec::{exec_supported, restrict_exec};
pub(crate) use mounts::{own_ptys, read_only_outside};
pub use private::private_lock_path;
pub(crate) use private::{
    drop_all_capabilities, hide_private_root, make_private_root, private_lock, private_root,
    sweep_private_locks, try_private_lock,
};
pub(crate) use tmp::{
    made_tmp_roots, remove_dead_roots as remove_dead_tmp_roots, remove_tmp, remove_tmp_root,
    tmp_root,
};
pub(crate) use writable::{note as note_agent_writable, program_on_path};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub(crate) mod net;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetError, RulesetStatus, Scope, path_beneath_rules,
};

/// The Landlock ABI orch's rules are written for: file truncation (V3), device ioctls (V5),
/// signals and abstract unix sockets scoped to the sandbox (V6).
const ABI_USED: ABI = ABI::V6;

/// The newest ABI orch uses, as a number ([`ABI_USED`]).
pub(crate) const ABI_NEWEST: u8 = 6;

/// What a confined process may do with files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Writable (and readable) beneath these.
    pub(crate) write: Vec<PathBuf>,
    /// Not readable beneath these (everything else is).
    pub(crate) deny_read: Vec<PathBuf>,
    /// Readable beneath these, denied above or not (a plan's read-only checkouts of the
    /// repositories it builds on, which lie in the worktree root every agent has denied).
    pub(crate) read: Vec<PathBuf>,
}

/// Whether this kernel confines processes with Landlock (checked without confining this one).
pub fn supported() -> bool {
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(|r| r.create())
        .is_ok()
}

/// The Landlock ABI this kernel offers, as far as orch uses it: 0 (none) to [`ABI_NEWEST`].
/// Found by asking for each ABI's newest control as a hard requirement (confines nothing).
pub fn abi() -> u8 {
    type Probe = fn(Ruleset) -> Result<Ruleset, RulesetError>;
    let probes: [(u8, Probe); 6] = [
        (6, |r| {
            r.handle_access(AccessFs::Execute)?.scope(Scope::Signal)
        }),
        (5, |r| r.handle_access(AccessFs::IoctlDev)),
        (4, |r| r.handle_access(AccessNet::BindTcp)),
        (3, |r| r.handle_access(AccessFs::Truncate)),
        (2, |r| r.handle_access(AccessFs::Refer)),
        (1, |r| r.handle_access(AccessFs::Execute)),
    ];
    probes
        .into_iter()
        .find(|(_, probe)| {
            probe(Ruleset::default().set_compatibility(CompatLevel::HardRequirement))
                .and_then(|r| r.create())
                .is_ok()
        })
        .map_or(0, |(v, _)| v)
}

/// What a confined process can still do on a kernel with Landlock ABI `abi` that ABI
/// [`ABI_NEWEST`] would control; empty when nothing is left out (or when `abi` is 0: then
/// nothing is confined at all).
pub(crate) fn uncontrolled(abi: u8) -> Vec<&'static str> {
    let mut out = Vec::new();
    if abi == 0 {
        return out;
    }
    if abi < 6 {
        out.push("send signals to processes outside its sandbox (`orch up` included)");
        out.push("connect to abstract unix sockets made outside its sandbox");
    }
    if abi < 5 {
        out.push("use ioctls on the devices it can open (terminals included)");
    }
    if abi < 4 {
        out.push("bind any TCP port when its network is this machine's (`network = \"open\"`)");
    }
    if abi < 3 {
        out.push("truncate files it can only read");
    }
    out
}

/// Confines the current process (and everything it starts from now on) to `rules`; with
/// `bind`, it may bind TCP ports only among those (Landlock ABI 4, Linux 6.7: on an older
/// kernel binds are not controlled, which `uncontrolled` says).
pub(crate) fn restrict(rules: &Rules, bind: Option<&[u16]>) -> Result<(), String> {
    let why = |e: landlock::RulesetError| format!("cannot confine the process (Landlock): {e}");
    let (roots, dirs) = read_roots(&rules.deny_read);
    let read = AccessFs::from_read(ABI_USED);
    let ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI_USED))
        .map_err(why)?
        // Signals and abstract unix sockets stay inside the sandbox (best-effort: a kernel
        // before ABI 6 leaves them out, and `abi()` said so before the run).
        .scope(Scope::from_all(ABI_USED))
        .map_err(why)?;
    let ruleset = match bind {
        Some(_) => ruleset.handle_access(AccessNet::BindTcp).map_err(why)?,
        None => ruleset,
    };
    let mut created = ruleset.create().map_err(why)?;
    if let Some(ports) = bind {
        created = created
            .add_rules(
                ports
                    .iter()
                    .map(|p| Ok::<_, RulesetError>(landlock::NetPort::new(*p, AccessNet::BindTcp))),
            )
            .map_err(why)?;
    }
    let status = created
        .add_rules(path_beneath_rules(&roots, read))
        .map_err(why)?
        // Only those there now (Landlock opens each): one made later is not readable.
        .add_rules(path_beneath_rules(
            rules.read.iter().filter(|p| p.exists()),
            read,
        ))
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
pub(crate) fn read_roots(deny: &[PathBuf]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    // As the kernel finds them: Landlock's rules are on what a path resolves to, so a denied
    // path reached through a link (`/tmp` a link elsewhere) is denied where it lies.
    let deny: BTreeSet<PathBuf> = deny
        .iter()
        .filter(|p| p.is_absolute())
        .map(|p| resolved(p))
        .collect();
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
            // A link needs no rule: what it leads to is judged where it lies, and a rule on it
            // would be on its target, which may be no file Landlock takes (`/dev/stdin` to a
            // pipe, a namespace: "File descriptor in bad state", and nothing confined).
            if e.file_type().is_ok_and(|t| t.is_symlink()) {
                continue;
            }
            let p = e.path();
            if !on_way.contains(&p) && !deny.contains(&p) {
                roots.push(p);
            }
        }
    }
    roots.sort();
    (roots, on_way.into_iter().collect())
}

/// `path` with its longest existing ancestor resolved (links followed) and the rest as written:
/// what it will be when made.
fn resolved(path: &Path) -> PathBuf {
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    for a in path.ancestors() {
        if let Ok(real) = a.canonicalize() {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match a.file_name() {
            Some(name) => rest.push(name),
            None => break,
        }
    }
    path.to_path_buf()
}

/// Where this machine's port claims lie for every user (`crate::ports`), denied to every
/// confined process.
pub(crate) const PORT_CLAIMS: &str = "/run/orch-ports";

/// The arguments of `orch sandbox-exec` that carry `rules`.
pub(crate) fn args(rules: &Rules) -> Vec<String> {
    let each = |flag: &'static str, paths: &[PathBuf]| -> Vec<String> {
        let pairs = paths
            .iter()
            .map(|p| [flag.to_string(), p.display().to_string()]);
        pairs.flatten().collect()
    };
    // The other processes' private `TMPDIR`s: the directory they are made in ([`tmp_root`]),
    // whatever the rules say (the process's own is in its write set). And the machine's port
    // claims, for every confined process (an agent, a check, `setup`, `verify`, a resolver, a
    // hook): a lock needs only a descriptor (red team 16: `setup` and `verify` held 120).
    let mut deny = rules.deny_read.clone();
    let claims = PathBuf::from(PORT_CLAIMS);
    for root in made_tmp_roots().into_iter().chain(
        std::fs::symlink_metadata(&claims)
            .is_ok_and(|m| m.is_dir())
            .then_some(claims),
    ) {
        if !deny.contains(&root) {
            deny.push(root);
        }
    }
    [
        each("--write", &rules.write),
        each("--deny-read", &deny),
        each("--read", &rules.read),
    ]
    .concat()
}

/// The rules of a command orch runs on code an agent wrote, outside an attempt (`verify`, `setup`):
/// `base` ([`crate::manifest::Sandbox::code_rules`]) plus its own `workdir` and private
/// `tmpdir`. Nothing else: no git admin directory (the worktree's `.git` file lies in `workdir`,
/// the directory it points to does not), no state directory.
pub(crate) fn code_rules(base: &Rules, workdir: &Path, tmpdir: &Path) -> Rules {
    let mut rules = base.clone();
    rules.write.push(workdir.to_path_buf());
    rules.write.push(tmpdir.to_path_buf());
    rules
}

/// How orch runs a process of code it does not trust (a `verify` or `[[notify]]` command, a
/// program the pre-flight asks its version): under `rules` through `orch_bin sandbox-exec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Confine {
    pub(crate) orch_bin: PathBuf,
    pub(crate) rules: Rules,
}

impl Confine {
    /// `argv`, run in `cwd` with `tmp` for its `TMPDIR`, as the argv to spawn: `orch
    /// sandbox-exec RULES -- argv` (orch's path: a verify in a container of the plan's image
    /// has orch there, not its helper).
    pub(crate) fn argv(&self, argv: &[String], cwd: &Path, tmp: &Path) -> Vec<String> {
        wrap(&self.orch_bin, &code_rules(&self.rules, cwd, tmp), argv)
    }
}

/// `argv` run through `orch_bin sandbox-exec` under `rules`: where `orch_bin` is the path of
/// orch's executable where the process starts (a container's, a Slurm node's), not this
/// machine's ([`wrap_here`] for this machine's).
pub(crate) fn wrap(orch_bin: &Path, rules: &Rules, argv: &[String]) -> Vec<String> {
    wrap_with(orch_bin.display().to_string(), rules, argv)
}

/// `argv` run on this machine through orch's helper under `rules`: `orch-exec sandbox-exec`
/// when the helper lies beside `orch_bin` ([`helper_beside`]: an executable of its code alone,
/// cheaper to start than a second copy of orch), else `orch_bin sandbox-exec`.
pub(crate) fn wrap_here(orch_bin: &Path, rules: &Rules, argv: &[String]) -> Vec<String> {
    wrap_with(helper_or_orch(orch_bin), rules, argv)
}

fn wrap_with(program: String, rules: &Rules, argv: &[String]) -> Vec<String> {
    let mut out = vec![program, "sandbox-exec".to_string()];
    out.extend(args(rules));
    out.push("--".to_string());
    out.extend(argv.iter().cloned());
    out
}

/// The name of orch's helpers' own executable, beside orch's (`src/bin/orch_exec.rs`): the
/// wrapper of every running agent, the start of each git run, an agent's confinement.
pub(crate) const HELPER_BIN: &str = "orch-exec";

/// `orch-exec` beside `orch_bin`, when it is an executable file there (not a link).
pub(crate) fn helper_beside(orch_bin: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let small = orch_bin.parent()?.join(HELPER_BIN);
    let meta = std::fs::symlink_metadata(&small).ok()?;
    (meta.is_file() && meta.permissions().mode() & 0o111 != 0).then_some(small)
}

/// [`helper_beside`] `orch_bin`, else `orch_bin` itself (the same verbs), as a string.
pub(crate) fn helper_or_orch(orch_bin: &Path) -> String {
    helper_beside(orch_bin)
        .unwrap_or_else(|| orch_bin.to_path_buf())
        .display()
        .to_string()
}

/// The devices every confined process may write (and, from ABI 5, use ioctls on): `/dev/null`
/// and the pseudo-terminals (an agent's tools may allocate ptys of their own). Not `/dev/tty`:
/// an agent runs in a session of its own with no controlling terminal.
pub(crate) const DEVICES: [&str; 3] = ["/dev/null", "/dev/pts", "/dev/ptmx"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_confined_process_is_denied_the_port_claims() {
        let claims = std::path::Path::new(PORT_CLAIMS);
        if !claims.is_dir() && nix::unistd::geteuid().is_root() {
            std::fs::create_dir_all(claims).expect("claims");
        }
        if !claims.is_dir() {
            return;
        }
        for rules in [
            Rules::default(),
            Rules {
                write: vec![PathBuf::from("/tmp/w")],
                deny_read: vec![PathBuf::from("/root/.ssh")],
                read: Vec::new(),
            },
        ] {
            let a = args(&rules);
            assert!(
                a.windows(2)
                    .any(|w| w[0] == "--deny-read" && w[1] == PORT_CLAIMS),
                "{a:?}"
            );
        }
    }

    #[test]
    fn what_an_older_abi_leaves_out() {
        assert!(uncontrolled(ABI_NEWEST).is_empty());
        assert!(uncontrolled(0).is_empty());
        assert_eq!(uncontrolled(5).len(), 2);
        assert!(uncontrolled(3).iter().any(|w| w.contains("ioctl")));
        assert!(uncontrolled(1).iter().any(|w| w.contains("truncate")));
        let abi = abi();
        assert!(abi <= ABI_NEWEST);
        assert_eq!(abi == 0, !supported());
    }

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
