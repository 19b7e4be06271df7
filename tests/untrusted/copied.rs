//! The files orch copies into each worktree from the main checkout: `copy` (a literal name and a
//! wildcard), the entries of `.worktreeinclude` and a `warm` directory. They are the lead's (a
//! secret in `.env`, build output), never a plan's work. An agent that un-ignores them (its
//! `.gitignore` emptied, a `!` line, a nested `.gitignore`) used to have them committed by orch
//! with its task, and landed over the lead's own files; one that commits them itself used to
//! land them. Now orch never stages them, whatever the ignore rules say, and never lands a tree
//! that changes one (exit 4, with `--allow-protected` too), sandbox on and off.

use crate::support::{self, Repo, toml_array};

/// What the main checkout holds, ignored, for orch to copy: path, the lead's content.
const LEADS: [(&str, &str); 5] = [
    (".env", "TOKEN=lead-secret-env\n"),
    ("config/db.local", "password=lead-secret-db\n"),
    ("secrets.txt", "lead-secret-include\n"),
    ("target/cache.bin", "lead-build-output\n"),
    ("sub/.env", "TOKEN=lead-secret-nested\n"),
];

/// Ways an agent makes git see the copies (shell lines run in the worktree).
const UNIGNORE: [&str; 3] = [
    ": > .gitignore",
    "printf '!.env\\n!config/\\n!*.local\\n!secrets.txt\\n!target/\\n!sub/\\n' >> .gitignore",
    "printf '*\\n!*\\n' > config/.gitignore && printf '!*\\n' > target/.gitignore \
     && printf '!.env\\n' > sub/.gitignore && sed -i '/env/d;/secrets/d' .gitignore",
];

/// A repository whose main checkout holds [`LEADS`] (ignored), plan `p` whose agent runs
/// `script` then writes `work.txt`, copying them with `copy`, `.worktreeinclude` and `warm`.
fn repo_with_copies(script: &str, sandbox: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    repo.write(
        ".gitignore",
        ".env\n*.local\nsecrets.txt\ntarget/\n.orch/\n",
    );
    repo.write(".worktreeinclude", "secrets.txt\n");
    repo.write(
        "docs/plans/p.md",
        "# p\n\n## Phase 1: Work\n- [ ] 1.1 Do the work\n",
    );
    repo.write("config/app.toml", "name = \"app\"\n");
    repo.write("sub/README", "sub\n");
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"{sandbox}\"\n\
             copy = [\".env\", \"config/*.local\", \"sub/.env\"]\nwarm = [\"target\"]\n\n\
             [agents.pa]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"pa\"\n",
            toml_array(&["sh", "-c", &format!("{script}\necho work > work.txt")]),
        ),
    );
    repo.commit_all("plans");
    for (path, content) in LEADS {
        repo.write(path, content);
    }
    repo
}

/// Whether any commit reachable from `rev` holds one of the lead's contents (anywhere).
fn history_holds_a_secret(repo: &Repo, rev: &str) -> Option<String> {
    let log = repo.git(&["log", "-p", "--format=%H", rev]);
    LEADS
        .iter()
        .find(|(_, c)| log.contains(c.trim()) || log.contains("agent-42-was-here"))
        .map(|(p, _)| (*p).to_string())
}

/// The lead's files in the main checkout are theirs, byte for byte.
fn leads_files_are_intact(repo: &Repo, what: &str) {
    for (path, content) in LEADS {
        assert_eq!(
            String::from_utf8_lossy(&repo.read(path)),
            content,
            "{what}: the lead's {path}"
        );
    }
}

/// An agent un-ignores the copies every way and changes them; orch commits its task, with
/// its work and without them; `orch merge` leaves the `.gitignore` change to a person, who
/// lands it with `--allow-protected`, and the lead's files are untouched.
/// Seen failing before: `plan/p` held `.env`, `config/db.local`, `secrets.txt`, `target/`.
#[test]
fn copied_files_are_never_committed_whatever_the_ignore_rules() {
    for sandbox in support::sandboxes() {
        for line in UNIGNORE {
            let what = format!("{line} (sandbox {sandbox})");
            let script = format!(
                "{line}\nfor f in .env config/db.local secrets.txt target/cache.bin sub/.env; \
                 do echo agent-$((40+2))-was-here >> \"$f\"; done\nmkdir -p target && echo x > target/new.o"
            );
            let repo = repo_with_copies(&script, sandbox);
            let (code, out, err) =
                repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_SANDBOX", sandbox));
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
            assert_eq!(repo.task("p", "1.1")["status"], "completed", "{what}");
            let files = repo.tree_files("plan/p");
            assert!(files.contains(&"work.txt".to_string()), "{what}: {files:?}");
            for (path, _) in LEADS {
                assert!(
                    !files.iter().any(|f| f == path || f.starts_with("target/")),
                    "{what}: plan/p holds {path}: {files:?}"
                );
            }
            assert_eq!(history_holds_a_secret(&repo, "plan/p"), None, "{what}");
            // Each way un-ignores a copy: the change is left to a person (red team 13), who
            // lands it; the copies still never reach `main`.
            let main = repo.rev("main");
            let (code, out, err) = repo.run(&["merge", "p"]);
            assert_eq!(code, 4, "{what}\n{out}\n{err}");
            assert!(err.contains(".gitignore"), "{what}: {err}");
            assert_eq!(repo.rev("main"), main, "{what}: main moved");
            let (code, out, err) = repo.run(&["merge", "p", "--allow-protected"]);
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
            assert!(repo.tree_files("main").contains(&"work.txt".to_string()));
            assert_eq!(history_holds_a_secret(&repo, "main"), None, "{what}");
            leads_files_are_intact(&repo, &what);
        }
    }
}

/// A finished plan whose branch then got a copy committed by the agent itself (`git add -f`):
/// `orch merge` refuses it (exit 4) naming the path, with `--allow-protected` too; `main` does
/// not move and the lead's files are theirs. Seen failing before: merged, the lead's `.env`
/// overwritten by the agent's.
#[test]
fn copied_files_a_branch_committed_are_never_landed() {
    for (path, _) in LEADS {
        let what = path;
        let repo = repo_with_copies("true", "off");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{what}\n{out}\n{err}");
        support::shell_in(
            &repo.worktree("p"),
            &format!(
                "echo agent-$((40+2))-was-here > {path} && git add -f {path} && git commit -qm sneak"
            ),
        );
        assert!(
            repo.tree_files("plan/p").contains(&path.to_string()),
            "{what}"
        );
        let main = repo.rev("main");
        for args in [&["merge", "p"][..], &["merge", "p", "--allow-protected"]] {
            let (code, out, err) = repo.run(args);
            assert_eq!(code, 4, "{what} {args:?}\n{out}\n{err}");
            assert!(
                err.contains(path) && err.contains("files it copies"),
                "{what} {args:?}\n{err}"
            );
            assert_eq!(repo.rev("main"), main, "{what} {args:?}: main moved");
            leads_files_are_intact(&repo, what);
        }
    }
}
