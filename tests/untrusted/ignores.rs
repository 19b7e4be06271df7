//! Red team 13: a confined agent wrote `!/.orch/`, `!/.orch/**` and `!.env` into the root
//! `.gitignore`, a plain `orch merge` landed it, and the person's next `git add -A` staged orch's
//! state, every agent's logs and prompts, the worktrees, and their own `.env` (which `copy`
//! brings into each worktree). A change to the root `.gitignore` (or one above an own or copied
//! path) lands without `--allow-protected` only when it keeps every line and adds no negation:
//! it can then only ignore more. And `.orch/` ignores itself (`.orch/.gitignore`, orch's own
//! file): whatever a landed `.gitignore` says, `git add -A` in the main checkout stages nothing
//! of orch's. Variants: un-ignoring `.orch/` two ways, `!.env`, the `.env` line removed, the
//! lines reordered, the file deleted, a negation behind a byte-order mark or a no-break space
//! (red team 14); a change that only ignores more lands as before.

use crate::big_files::plan_p;

#[test]
fn ignores_a_change_that_could_un_ignore_orchs_paths_or_a_copied_file_needs_a_person() {
    let base = ".env\\nnode_modules/\\n";
    for (script, refused) in [
        ("printf '!/.orch/\\n!/.orch/**\\n' >> .gitignore", true),
        ("printf '!.orch\\n' >> .gitignore", true),
        ("printf '!.env\\n' >> .gitignore", true),
        ("printf 'node_modules/\\n' > .gitignore", true),
        ("printf 'node_modules/\\n.env\\n' > .gitignore", true),
        ("rm .gitignore", true),
        // Red team 14: a negation behind a UTF-8 byte-order mark (git skips it), before the old
        // lines; one after a no-break space.
        (
            "{ printf '\\357\\273\\277!.env\\n'; cat .gitignore; } > g && mv g .gitignore",
            true,
        ),
        ("printf '\\302\\240!.env\\n' >> .gitignore", true),
        ("printf 'dist/\\n' >> .gitignore", false),
        (
            "printf 'build/\\n.env\\nnode_modules/\\ntarget/\\n' > .gitignore",
            false,
        ),
    ] {
        let repo = plan_p(script, "integrate = \"off\"\ncopy = [\".env\"]", "");
        repo.write(".gitignore", &base.replace("\\n", "\n"));
        repo.commit_all("ignore");
        std::fs::write(repo.root().join(".env"), "SECRET=1\n").expect("write .env");
        let (code, out, err) = repo.run(&["up"]);
        assert_eq!(code, 0, "{script}\n{out}\n{err}");
        assert_eq!(repo.task("p", "1.1")["status"], "completed", "{script}");
        let main = repo.rev("main");
        let (code, out, err) = repo.run(&["merge", "p"]);
        if refused {
            assert_eq!(code, 4, "{script}: landed\n{out}\n{err}");
            assert!(err.contains(".gitignore"), "{script}: {err}");
            assert_eq!(repo.rev("main"), main, "{script}: main moved");
            // A person's word lands it.
            let (code, out, err) = repo.run(&["merge", "p", "--allow-protected"]);
            assert_eq!(code, 0, "{script}\n{out}\n{err}");
        } else {
            assert_eq!(code, 0, "{script}: refused\n{out}\n{err}");
        }
        assert_ne!(repo.rev("main"), main, "{script}: not landed");
        // Whatever the landed `.gitignore` says: nothing of orch's is staged by `git add -A`.
        let staged = repo.git(&["add", "-A", "--dry-run"]);
        assert!(
            !staged.contains(".orch/"),
            "{script}: git add -A stages orch's files:\n{staged}"
        );
        assert_eq!(
            std::fs::read(repo.root().join(".orch/.gitignore")).expect(".orch/.gitignore"),
            b"*\n",
            "{script}"
        );
    }
}

/// `.orch/.gitignore` is orch's own: an attempt that writes one fails naming it (nothing
/// committed), and a branch given one by hand is refused whoever allows it.
#[test]
fn ignores_orchs_own_gitignore_is_never_committed_nor_landed() {
    let repo = plan_p(
        "mkdir -p .orch && printf '!*\\n' > .orch/.gitignore",
        "integrate = \"off\"",
        "",
    );
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 5, "{out}\n{err}");
    let task = repo.task("p", "1.1");
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        task["error"]
            .as_str()
            .unwrap_or("")
            .contains(".orch/.gitignore"),
        "{task}"
    );
    assert_eq!(repo.rev("plan/p"), repo.rev("main"), "plan/p moved");
    // By hand on the branch of a finished plan: refused, `--allow-protected` or not.
    let repo = plan_p("true", "integrate = \"off\"", "");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let main = repo.rev("main");
    crate::support::shell_in(
        &repo.worktree("p"),
        "mkdir -p .orch && printf '!*\\n' > .orch/.gitignore \
         && git add -f .orch/.gitignore && git commit -qm hand",
    );
    for flag in [None, Some("--allow-protected")] {
        let mut args = vec!["merge", "p"];
        args.extend(flag);
        let (code, out, err) = repo.run(&args);
        assert_eq!(code, 4, "{flag:?}\n{out}\n{err}");
        assert!(err.contains(".orch/.gitignore"), "{flag:?}: {err}");
        assert_eq!(repo.rev("main"), main, "{flag:?}: main moved");
    }
    assert_eq!(
        std::fs::read(repo.root().join(".orch/.gitignore")).expect(".orch/.gitignore"),
        b"*\n"
    );
}
