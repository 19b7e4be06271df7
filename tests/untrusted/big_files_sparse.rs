//! A huge file in a sparse plan's worktree (`paths`): the red team's `truncate -s 3G
//! other/tracked.txt`, a tracked file outside the cone. Its index entry is `skip-worktree`, with
//! no stat data: git clears the bit for a present file and compares it by content, so every `git
//! status` orch ran there hashed the whole 3 GiB (about 17 s a GiB: `orch up` took 98 s after
//! the agent ended, `orch clean --force` 56 s). The rule: nothing over the limits is ever hashed.
//! A scan that reads no content (the index's sizes and flags, the untracked names, `lstat`)
//! finds every such file first: the task fails at once naming it, the save leaves it out (a
//! tracked one removed, never through a link: the reset would remove it or put HEAD's back), and
//! `orch clean` keeps the plan at once. Sandbox on and off.

use crate::support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{Repo, toml_array};

/// The most one `orch` run may take here: hashing 3 GiB takes far longer.
const DEADLINE: Duration = Duration::from_secs(20);

/// A sparse plan `p` (`paths = ["src"]`, `max_file_size = "1M"`) whose agent runs `script`;
/// `src/a.txt`, an empty `src/empty.txt` and `other/tracked.txt` committed on `main`.
fn sparse_plan(script: &str, sandbox: &str) -> Repo {
    let repo = Repo::builder()
        .identity_in_config()
        .timeout(DEADLINE)
        .build();
    repo.write("docs/plans/p.md", &support::one_task("P", "Make a file"));
    repo.write("src/a.txt", "a\n");
    repo.write("src/empty.txt", "");
    repo.write("other/tracked.txt", "o\n");
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nmax_file_size = \"1M\"\nsandbox = \"{sandbox}\"\n\n\
             [agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\npaths = [\"src\"]\n",
            toml_array(&["sh", "-c", &format!("{script}\necho done > src/work.txt")]),
        ),
    );
    repo.commit_all("plans");
    repo
}

/// What the agent runs, the name the failure gives the file, and where (from the worktree) the
/// big file is made again for `orch clean`.
const VARIANTS: [(&str, &str); 5] = [
    // The red team's: a tracked file outside the cone, grown (`skip-worktree`, no stat data).
    (
        "mkdir -p other && truncate -s 3G other/tracked.txt",
        "`other/tracked.txt`",
    ),
    // A new untracked file outside the cone.
    (
        "mkdir -p other && truncate -s 3G other/new.bin",
        "`other/new.bin`",
    ),
    // A tracked file inside the cone, grown.
    ("truncate -s 3G src/a.txt", "`src/a.txt`"),
    // An empty tracked file inside the cone, grown: its entry's size is 0, which git takes for
    // "no stat data" and compares by content.
    ("truncate -s 3G src/empty.txt", "`src/empty.txt`"),
    // A tracked file outside the cone below a directory the agent replaced by a link to a
    // directory outside the worktree holding a huge file there: refused by its name, and that
    // file (not the agent's to remove) is never removed through the link.
    (
        "rm -rf other && ln -s \"$OUTSIDE\" other",
        "`other/tracked.txt`",
    ),
];

/// Seen failing on the code before (the red team's variant): `orch up` ran past the test's
/// deadline (the file hashed by every `git status` in the worktree), and `orch clean --force`
/// too.
#[test]
fn big_files_sparse_a_huge_file_in_a_sparse_worktree_fails_at_once_and_is_never_hashed() {
    for sandbox in support::sandboxes() {
        for (script, named) in VARIANTS {
            let what = format!("{script} (sandbox {sandbox})");
            let repo = sparse_plan(script, sandbox);
            // The link variant's target: a directory of the test's, outside the worktree.
            let outside = repo.dir().join("outside");
            std::fs::create_dir_all(&outside).expect("outside");
            let outside_file = outside.join("tracked.txt");
            let grown = std::process::Command::new("truncate")
                .args(["-s", "3G"])
                .arg(&outside_file)
                .status()
                .expect("truncate");
            assert!(grown.success(), "{what}");
            let main = repo.rev("main");
            let started = Instant::now();
            let (code, out, err) = repo.run_cmd(
                repo.orch(&["up", "--json"])
                    .env_remove("ORCH_SANDBOX")
                    .env("OUTSIDE", &outside),
            );
            let took = started.elapsed();
            assert_eq!(code, 5, "{what}\n{out}\n{err}");
            let task = repo.task("p", "1.1");
            assert_eq!(task["status"], "failed", "{what}: {task}");
            let error = task["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(named)
                    && error.contains("3.0 GiB")
                    && error.contains("max_file_size"),
                "{what}: {error}"
            );
            assert_eq!(repo.rev("plan/p"), main, "{what}: plan/p moved");
            assert_eq!(repo.rev("main"), main, "{what}: main moved");
            let largest = super::big_files::largest_object(&repo);
            assert!(largest < 1 << 20, "{what}: an object of {largest} bytes");
            // The attempt's other work is saved, the huge file is not; the tracked files keep
            // their committed versions there.
            let saved = repo.refs_under("refs/orch/attempts/p/");
            assert_eq!(saved.len(), 1, "{what}: {saved:?}");
            let files = repo.tree_files(&saved[0]);
            assert!(
                files.iter().any(|f| f == "src/work.txt"),
                "{what}: {files:?}"
            );
            assert!(
                !files.iter().any(|f| f == "other/new.bin"),
                "{what}: {files:?}"
            );
            for kept in ["other/tracked.txt", "src/a.txt", "src/empty.txt"] {
                assert!(files.iter().any(|f| f == kept), "{what}: {kept} {files:?}");
            }
            // Nothing removed through the link.
            let outside_size = std::fs::metadata(&outside_file).map(|m| m.len()).ok();
            assert_eq!(outside_size, Some(3 << 30), "{what}: the file outside");
            eprintln!("{what}: orch up took {took:?}");

            // The same file made again in the worktree: `orch clean` keeps the plan at once,
            // naming it, and removes nothing.
            let tree = repo.root().join(".orch/worktrees/p");
            let made = std::process::Command::new("sh")
                .args(["-c", script])
                .env("OUTSIDE", &outside)
                .current_dir(&tree)
                .status()
                .expect("sh");
            assert!(made.success(), "{what}");
            let path = Path::new(&named[1..named.len() - 1]);
            let shown = format!("`.orch/worktrees/p/{}`", path.display());
            let (code, out, err) = repo.run(&["clean", "--force", "p"]);
            assert_eq!(code, 5, "{what}\n{out}\n{err}");
            assert!(
                out.contains(&shown) && out.contains("3.0 GiB") && out.contains("max_file_size"),
                "{what}\n{out}"
            );
            assert!(tree.is_dir(), "{what}: the worktree was removed");
            let size = std::fs::metadata(tree.join(path)).map(|m| m.len()).ok();
            assert_eq!(size, Some(3 << 30), "{what}: the file");
            assert_eq!(repo.rev("main"), main, "{what}: main moved");
            assert!(super::big_files::largest_object(&repo) < 1 << 20, "{what}");
        }
    }
}
