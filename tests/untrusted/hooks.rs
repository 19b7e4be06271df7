//! A `[[notify]]` hook runs code the agents' landed work can reach: its program reads the
//! repository (a module beside its script, a makefile it includes, a library path it names, a
//! directory of scripts it runs). No list of protected files names all of it: a red team landed
//! thirteen such ways past the protection of what a hook loads, and the next `orch up` ran the
//! agent's code unconfined, as the lead (root). So a hook runs confined wherever the manifest
//! confines an agent: it reads what the agents read, writes only a private `TMPDIR` and
//! `sandbox_write`. Here plan `p`'s agent changes, for six hooks written six ways, the code each
//! loads so that it writes a mark outside the repository; orch commits it, `orch merge` lands it
//! (none is a protected path), and the next `orch up` runs every hook: no mark is written, and
//! a hook of the lead's that writes where `sandbox_write` allows still delivers its event.

use std::path::Path;

use crate::landlock;
use crate::support::{Repo, toml_array};

/// Each hook: its command line, and the file (with its content as the lead wrote it) it loads
/// without naming it.
const HOOKS: [(&[&str], &str, &str); 6] = [
    (&["make", "-s", "notify"], "local.conf", "X = 1\n"),
    (
        &["env", "PYTHONPATH=lib", "python3", "hooks/n.py"],
        "lib/notifylib.py",
        "",
    ),
    (
        &["perl", "-Ilib", "hooks/n.pl"],
        "lib/Notify.pm",
        "package Notify; 1;\n",
    ),
    (
        &["bash", "-c", "cd tools && ./n.sh"],
        "tools/n.sh",
        "#!/bin/sh\ncat > /dev/null\n",
    ),
    (
        &[
            "sh",
            "-c",
            "for f in hooks.d/*; do sh \"$f\" < /dev/null; done",
        ],
        "hooks.d/a.sh",
        "true\n",
    ),
    (&["sh", "hooks/s.sh"], "conf/env", "X=1\n"),
];

/// What the agent writes into each loaded file: code that leaves a mark in `marks` (named by
/// the hook's index) with who ran it.
fn hostile(i: usize, file: &str, marks: &Path) -> String {
    let mark = marks.join(format!("hook-{i}"));
    let m = mark.display();
    match file {
        "local.conf" => format!("X = 1\n$(shell id > {m})\n"),
        "lib/notifylib.py" => format!("import os\nos.system('id > {m}')\n"),
        "lib/Notify.pm" => format!("package Notify;\nsystem('id > {m}');\n1;\n"),
        _ => format!("#!/bin/sh\nid > {m}\n"),
    }
}

#[test]
fn hooks_run_the_code_the_agents_landed_only_confined() {
    if !landlock() {
        return;
    }
    let repo = Repo::builder().identity_in_config().build();
    let marks = repo.outside("marks");
    let delivered = repo.outside("delivered");
    std::fs::create_dir_all(&marks).expect("marks");
    std::fs::create_dir_all(&delivered).expect("delivered");
    // The lead's hooks and the files they load, as the lead wrote them.
    repo.write(
        "Makefile",
        "CONF = local.conf\ninclude $(CONF)\nnotify:\n\t@cat > /dev/null\n",
    );
    repo.write(
        "hooks/n.py",
        "import sys\nimport notifylib\nsys.stdin.read()\n",
    );
    repo.write("hooks/n.pl", "use Notify;\nmy @in = <STDIN>;\n");
    repo.write(
        "hooks/s.sh",
        "CONF=conf/env\n. \"./$CONF\"\ncat > /dev/null\n",
    );
    let mut tables = String::new();
    for (argv, file, content) in HOOKS {
        repo.write(file, content);
        tables.push_str(&format!(
            "[[notify]]\nevents = [\"run_finished\"]\ncommand = {}\n\n",
            toml_array(argv)
        ));
    }
    // The lead's own hook, writing where `sandbox_write` lets it: still delivered.
    let log = delivered.join("events.jsonl");
    tables.push_str(&format!(
        "[[notify]]\nevents = [\"run_finished\"]\ncommand = {}\n\n",
        toml_array(&["sh", "-c", &format!("cat >> '{}'", log.display())])
    ));
    let mut script = String::new();
    for (i, (_, file, _)) in HOOKS.iter().enumerate() {
        script.push_str(&format!(
            "mkdir -p \"$(dirname '{file}')\" && printf '%s' '{}' > '{file}' && chmod +x '{file}'\n",
            hostile(i, file, &marks).replace('\'', "'\\''")
        ));
    }
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Tidy the hooks\n",
    );
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\nsandbox_write = [{:?}]\n\n\
             [agents.a]\ncommand = {}\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n\n{tables}",
            delivered.display().to_string(),
            toml_array(&["sh", "-c", &script]),
        ),
    );
    repo.commit_all("hooks");
    let run = |args: &[&str]| {
        let mut c = repo.orch(args);
        c.env_remove("ORCH_SANDBOX");
        repo.run_cmd(&mut c)
    };
    let (code, out, err) = run(&["up"]);
    assert_eq!(code, 0, "orch up\n{out}\n{err}");
    assert_eq!(repo.task("p", "1.1")["status"], "completed");
    let (code, out, err) = run(&["merge"]);
    assert_eq!(
        code, 0,
        "orch merge: none of these is protected\n{out}\n{err}"
    );
    for (i, (_, file, _)) in HOOKS.iter().enumerate() {
        let landed = repo.git(&["show", &format!("main:{file}")]);
        assert!(
            landed.contains("id >"),
            "hook {i}: `{file}` not landed: {landed}"
        );
    }
    // The next run: every hook gets `run_finished` and runs what landed.
    let (code, out, err) = run(&["up"]);
    assert_eq!(code, 0, "orch up again\n{out}\n{err}");
    let left: Vec<_> = std::fs::read_dir(&marks)
        .expect("marks")
        .flatten()
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            format!("{}: {text}", e.file_name().to_string_lossy())
        })
        .collect();
    assert!(
        left.is_empty(),
        "a hook ran the agent's code unconfined: {left:?}\n{err}"
    );
    let events = std::fs::read_to_string(&log).expect("the lead's hook delivered nothing");
    assert!(events.contains("\"run_finished\""), "{events}");
}
