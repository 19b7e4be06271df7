//! The lead's side of a remote attempt, shared by its driver ([`super::attempt`]), the return of
//! a lost attempt's work ([`super::lost`]) and the pruning of snapshot refs ([`super::refs`]): a
//! line of orch's in the attempt's log, the lead's git, a bundle fetched into the lead's
//! repository.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Stdio;

use crate::git::GitTarget;

/// A line of orch's in the attempt's log.
pub(super) fn say(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "=== orch: {} ===", line.escape_debug());
    let _ = o.flush();
}

/// Runs the lead's git on `target`; its stdout, or why it failed (its stderr, escaped).
pub(super) fn git_bytes(target: GitTarget<'_>, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut cmd = crate::git::git_command(target)?;
    cmd.args(args);
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run git {}: {e}", args.join(" ")))?;
    if !o.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).trim().escape_debug()
        ));
    }
    Ok(o.stdout)
}

/// The most bytes of a bundle's header (its prerequisites and refs) read.
const HEADER_MAX: u64 = 64 * 1024;

/// What a bundle's header says: its prerequisites, its refs (`(id, name)`), and where its pack
/// starts.
#[derive(Debug, PartialEq)]
struct Header {
    prerequisites: Vec<String>,
    refs: Vec<(String, String)>,
    pack_at: u64,
}

/// Reads a bundle's header (`# v2 git bundle`, or `# v3 git bundle` with no capability but
/// `@object-format=sha1`): its lines up to the blank one.
fn header(bytes: &[u8]) -> Result<Header, String> {
    let end = bytes
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or("its header is cut short or too long")?;
    let text = std::str::from_utf8(&bytes[..end]).map_err(|_| "its header is not text")?;
    let mut lines = text.split('\n');
    match lines.next() {
        Some("# v2 git bundle" | "# v3 git bundle") => {}
        _ => return Err("it is not a git bundle".into()),
    }
    let (mut prerequisites, mut refs) = (Vec::new(), Vec::new());
    for line in lines {
        if let Some(cap) = line.strip_prefix('@') {
            if cap != "object-format=sha1" {
                return Err(format!(
                    "its capability `{}` is not taken",
                    cap.escape_debug()
                ));
            }
        } else if let Some(p) = line.strip_prefix('-') {
            let id = p.split(' ').next().unwrap_or_default();
            if !super::job::commit_id(id) {
                return Err("a prerequisite is no commit id".into());
            }
            prerequisites.push(id.to_string());
        } else {
            let (id, name) = line
                .split_once(' ')
                .ok_or("a line of its header is no ref")?;
            if !super::job::commit_id(id) {
                return Err("a ref of it names no object id".into());
            }
            refs.push((id.to_string(), name.to_string()));
        }
    }
    Ok(Header {
        prerequisites,
        refs,
        pack_at: end as u64 + 2,
    })
}

/// Takes `from` of the bundle `file` into the lead's ref `to`, with git's object checks on: its
/// prerequisites commits this repository has, its pack indexed with `index-pack --strict`
/// (every object checked as `transfer.fsckObjects` checks a fetch's, `.gitmodules` too, and
/// every link an object makes present here or in the pack), then `to` set to what the bundle
/// names `from`. Nothing else of the bundle is written. Not `git fetch` of the bundle: its
/// check that the prerequisites are reachable walks every ref and every worktree's `HEAD`, and
/// fails while any `git worktree add` runs (its `HEAD` is all zeros for a moment), which a run
/// of many plans makes often. No maintenance after it either (a `gc --auto` taking the refs'
/// locks while the supervisor moves a plan branch was seen failing task commits at 160 tasks).
pub(super) fn fetch_bundle(root: &Path, file: &Path, from: &str, to: &str) -> Result<(), String> {
    let refuse = |why: String| format!("the bundle is refused: {why}");
    let (mut f, _) = crate::untrusted::read::open(file).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    (&mut f)
        .take(HEADER_MAX)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
    let h = header(&head).map_err(refuse)?;
    let target = GitTarget::WorkTree(root);
    for p in &h.prerequisites {
        git_bytes(target, &["cat-file", "-e", &format!("{p}^{{commit}}")]).map_err(|_| {
            refuse(format!(
                "it needs commit {p}, which this repository does not have"
            ))
        })?;
    }
    let tip = match h.refs.iter().filter(|(_, n)| n == from).collect::<Vec<_>>()[..] {
        [(id, _)] => id.clone(),
        [] => return Err(refuse(format!("it holds no `{from}`"))),
        _ => return Err(refuse(format!("it holds `{from}` more than once"))),
    };
    f.seek(SeekFrom::Start(h.pack_at))
        .map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
    let mut cmd = crate::git::git_command(target)?;
    cmd.args(["index-pack", "--stdin", "--fix-thin", "--strict"])
        .stdin(Stdio::from(f))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run git index-pack: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "git index-pack failed: {}",
            String::from_utf8_lossy(&o.stderr).trim().escape_debug()
        ));
    }
    git_bytes(target, &["update-ref", to, &tip]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header's prerequisites and refs, and where its pack starts; what is not a v2 or sha1
    /// v3 header is refused.
    #[test]
    fn a_bundles_header_is_read_and_nothing_else_taken() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let text = format!("# v2 git bundle\n-{a} base\n{b} refs/orch/snap/k\n\nPACK");
        let h = header(text.as_bytes()).expect("header");
        assert_eq!(h.prerequisites, vec![a.clone()]);
        assert_eq!(h.refs, vec![(b.clone(), "refs/orch/snap/k".to_string())]);
        assert_eq!(&text.as_bytes()[h.pack_at as usize..], b"PACK");
        let v3 = format!("# v3 git bundle\n@object-format=sha1\n{b} refs/x\n\nPACK");
        assert!(header(v3.as_bytes()).is_ok());
        for bad in [
            format!("# v3 git bundle\n@filter=blob:none\n{b} refs/x\n\nPACK"),
            format!("# v2 git bundle\n-xyz\n{b} refs/x\n\nPACK"),
            format!("# v2 git bundle\n{b}\n\nPACK"),
            format!("# v9 git bundle\n{b} refs/x\n\nPACK"),
            format!("# v2 git bundle\n{b} refs/x\n"),
        ] {
            assert!(header(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
