//! What one plan's confined agent can read of another's. Plan `b`'s agent (the victim) leaves a
//! secret in its worktree and in its private `TMPDIR` and keeps running; plan `a`'s agent, at the
//! same time, and then `a`'s check try to read them every way they know: by path, by listing
//! the directories they lie in (the worktree root, the directory of the `TMPDIR`s), through
//! `..` from their own worktree, through a link and a hard link of their own, through
//! `/proc/<pid>/cwd` and `/proc/<pid>/environ` of the victim. On the code before, the worktree and the `TMPDIR` were readable (as on an ssh
//! host they are not). Every try at a file's contents is refused (the names in a directory
//! stay visible, as for every `sandbox_deny_read` path: the book says so), the secret appears nowhere in what `a` wrote or
//! committed, each still reads its own worktree and `TMPDIR`, and both plans complete. With
//! `sandbox = "off"` nothing is promised (the book says so): not tested here.

use std::path::Path;

use crate::landlock;
use crate::support::{Repo, fixtures, toml_array};

fn manifest(repo: &Repo, out: &Path) {
    let script = fixtures().join("hostile_peers.py").display().to_string();
    let argv = |args: &[&str]| {
        let mut v = vec!["python3".to_string(), script.clone()];
        v.extend(args.iter().map(|s| (*s).to_string()));
        toml_array(&v)
    };
    let out_s = out.display().to_string();
    repo.write(
        "docs/plans/a.md",
        "# A\n\n## Phase 1: Work\n- [ ] 1.1 Look at the neighbour\n",
    );
    repo.write(
        "docs/plans/b.md",
        "# B\n\n## Phase 1: Work\n- [ ] 1.1 Keep a secret\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\nmax_agents = 2\n\n\
             [agents.thief]\ncommand = {}\nreport = \"exit\"\nsandbox_write = [{out_s:?}]\n\n\
             [agents.victim]\ncommand = {}\nreport = \"exit\"\nsandbox_write = [{out_s:?}]\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"victim\"\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"thief\"\ncheck = {}\n",
            argv(&["thief", &out_s, "agent"]),
            argv(&["victim", &out_s]),
            argv(&["thief", &out_s, "check"]),
        ),
    );
    repo.commit_all("plans");
}

/// The lines `<try> <verdict> <detail>` of what `who` wrote.
fn findings(out: &Path, who: &str) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(out.join(format!("{who}.txt")))
        .unwrap_or_else(|e| panic!("{who} wrote no findings: {e}"));
    assert!(
        !text.contains("PEER-SECRET"),
        "{who} read the secret:\n{text}"
    );
    text.lines()
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            let mut next = || it.next().unwrap_or("").to_string();
            (next(), next(), next())
        })
        .collect()
}

#[test]
fn peers_a_confined_agent_and_its_check_read_nothing_of_another_plans_worktree_or_tmpdir() {
    if !landlock() {
        return;
    }
    let repo = Repo::builder().identity_in_config().build();
    let out = repo.outside("findings");
    std::fs::create_dir_all(&out).expect("findings");
    manifest(&repo, &out);
    let (code, o, e) = repo.run_cmd(repo.orch(&["up"]).env("ORCH_SANDBOX", "on"));
    assert_eq!(code, 0, "orch up\n{o}\n{e}");
    assert_eq!(repo.task("a", "1.1")["status"], "completed");
    assert_eq!(repo.task("b", "1.1")["status"], "completed");
    // The victim's secret was there to steal: it is in b's commit.
    let shown = repo.git(&["show", "plan/b:peer-secret.txt"]);
    assert!(shown.contains("PEER-SECRET-worktree"), "{shown}");

    // The agent ran beside the victim: everything of it existed.
    let agent = findings(&out, "agent");
    // A directory's names are not its contents: Landlock's listing right on `/` reaches every
    // directory beneath it, so listings are tried (none may show a secret) but not judged.
    let content = |t: &str| t.starts_with("t-") && !t.ends_with("-list");
    let tries: Vec<_> = agent.iter().filter(|(t, _, _)| content(t)).collect();
    assert!(tries.len() >= 7, "{agent:?}");
    for (t, verdict, detail) in &tries {
        assert_eq!(verdict, "denied", "agent: {t} {detail}\n{agent:?}");
    }
    // The check ran after it: the victim's TMPDIR is gone, the rest is there.
    let check = findings(&out, "check");
    for (t, verdict, detail) in check.iter().filter(|(t, _, _)| content(t)) {
        let gone = t.starts_with("t-tmpdir-") || t.starts_with("t-proc-");
        assert!(
            verdict == "denied" || (gone && verdict == "missing"),
            "check: {t} {verdict} {detail}"
        );
        if t.starts_with("t-worktree") {
            assert_eq!(verdict, "denied", "check: {t} {detail}");
        }
    }
    // Each still reads its own.
    for (who, lines) in [("agent", &agent), ("check", &check)] {
        for own in ["own-worktree", "own-tmpdir"] {
            assert!(
                lines.iter().any(|(t, v, _)| t == own && v == "allowed"),
                "{who}: {own}\n{lines:?}"
            );
        }
    }
    // Nothing of the victim's in a's commit.
    let files = repo.git(&["ls-tree", "-r", "--name-only", "plan/a"]);
    assert!(!files.contains("peer-secret"), "{files}");
    assert!(files.contains("thief.txt"), "{files}");
}

/// An unconfined neighbour (`sandbox = "off"` for its plan only) moves the directory of the
/// private `TMPDIR`s away and puts a link to a directory of the lead's in its place (the red
/// team's attack): orch must neither remove what lies behind the link when a confined attempt
/// ends nor make the next attempt's `TMPDIR` there. On the code before, the lead's
/// `v-1.1-1/k` and `v-1.2-1/k` were removed and the victim wrote its next `TMPDIR` into the
/// lead's directory. The lead's files are untouched, the victim's tasks complete.
#[test]
fn peers_a_neighbour_that_swaps_the_tmpdir_directory_for_a_link_makes_orch_touch_nothing_there() {
    if !landlock() {
        return;
    }
    let repo = Repo::builder().identity_in_config().build();
    let out = repo.outside("sync");
    std::fs::create_dir_all(&out).expect("sync");
    let precious = repo.outside("precious");
    for d in ["v-1.1-1", "v-1.2-1"] {
        std::fs::create_dir_all(precious.join(d)).expect("precious");
        std::fs::write(precious.join(d).join("k"), "keep\n").expect("k");
    }
    let o = out.display();
    // The victim's first task says where its TMPDIR is and waits until the swap is done (its
    // TMPDIR, reached through the link now, is not its own any more: it writes nothing there);
    // its second writes into its TMPDIR.
    let victim = format!(
        "if [ \"$ORCH_TASK\" = 1.1 ]; then echo \"$TMPDIR\" > {o}/v.tmp.part && mv {o}/v.tmp.part {o}/v.tmp; \
         n=0; while [ ! -e {o}/swapped ] && [ $n -lt 2400 ]; do sleep 0.05; n=$((n+1)); done; \
         else echo w > \"$TMPDIR/w\"; fi; echo $ORCH_TASK > $ORCH_TASK.txt"
    );
    let swapper = format!(
        "n=0; while [ ! -e {o}/v.tmp ] && [ $n -lt 2400 ]; do sleep 0.05; n=$((n+1)); done; \
         r=$(dirname \"$(cat {o}/v.tmp)\"); mv \"$r\" \"$r.moved\" && ln -s {p} \"$r\" && touch {o}/swapped; \
         echo o > o.txt",
        p = precious.display()
    );
    repo.write(
        "docs/plans/v.md",
        "# V\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n",
    );
    repo.write(
        "docs/plans/o.md",
        "# O\n\n## Phase 1: Work\n- [ ] 1.1 Swap\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nmax_agents = 2\n\n\
             [agents.victim]\ncommand = [\"sh\", \"-c\", {victim:?}]\nreport = \"exit\"\nsandbox = \"on\"\nsandbox_write = [{:?}]\n\n\
             [agents.swapper]\ncommand = [\"sh\", \"-c\", {swapper:?}]\nreport = \"exit\"\nsandbox = \"off\"\n\n\
             [[plan]]\nname = \"v\"\nfile = \"docs/plans/v.md\"\nagent = \"victim\"\n\n\
             [[plan]]\nname = \"o\"\nfile = \"docs/plans/o.md\"\nagent = \"swapper\"\n",
            out.display().to_string()
        ),
    );
    repo.commit_all("plans");
    let (code, o, e) = repo.run_cmd(repo.orch(&["up"]).env_remove("ORCH_SANDBOX"));
    assert!(
        out.join("swapped").exists(),
        "the swap did not happen\n{o}\n{e}"
    );
    assert_eq!(code, 0, "orch up\n{o}\n{e}");
    for t in ["1.1", "1.2"] {
        assert_eq!(repo.task("v", t)["status"], "completed", "{t}");
    }
    for d in ["v-1.1-1", "v-1.2-1"] {
        assert_eq!(
            std::fs::read_to_string(precious.join(d).join("k"))
                .ok()
                .as_deref(),
            Some("keep\n"),
            "{d}/k of the lead's directory was removed"
        );
        assert!(
            !precious.join(d).join("w").exists(),
            "{d}: a TMPDIR was made there"
        );
    }
    // The link is where the swapper put it, pointing where it did: nothing followed it.
    let v_tmp = std::fs::read_to_string(out.join("v.tmp")).expect("v.tmp");
    let root = Path::new(v_tmp.trim())
        .parent()
        .expect("root")
        .to_path_buf();
    assert!(std::fs::symlink_metadata(&root).expect("link").is_symlink());
    let _ = std::fs::remove_file(&root);
    let _ = std::fs::remove_dir_all(root.with_extension("moved"));
}
