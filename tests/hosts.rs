//! `[[host]]` machines (`executor = "ssh"`) against real `sshd` servers on loopback
//! (`support::sshd`): `orch hosts` reaches each with the user's `ssh` from PATH, copies orch
//! there once (by its git blob id), reports what each offers, and says which does not answer;
//! bad `[[host]]` input is refused with file:line, nothing written.

use crate::support;

use std::net::TcpListener;

use serde_json::Value;
use support::{Repo, sshd};

const PLAN: &str = "# Plan\n\n## Phase 1: One\n\n### Task 1.1: Do\n";

/// A repository with one plan and `hosts` (TOML) in its manifest.
fn repo_with(hosts: &str, defaults: &str) -> Repo {
    let repo = Repo::new();
    repo.write("docs/plans/p.md", PLAN);
    repo.write(
        "plans.toml",
        &format!(
            "{hosts}\n[defaults]\n{defaults}\n\n[agents.a]\ncommand = [\"true\"]\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n"
        ),
    );
    repo.commit_all("plans");
    repo
}

fn hosts_json(repo: &Repo, lab: &sshd::Lab) -> (i32, Value, String) {
    let mut cmd = repo.orch(&["hosts", "--json"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v, err)
}

fn host<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

#[test]
fn orch_hosts_reports_each_host_copies_orch_once_and_names_the_one_that_does_not_answer() {
    if !sshd::available() {
        return;
    }
    let mut lab = sshd::Lab::start(&["h1", "h2"]);
    // A third host on a loopback port where nothing listens.
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let gone_dir = lab.tmp.path().join("gone");
    // A fourth that accepts the connection and says nothing (a hung machine).
    let mute = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mute_port = mute.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in mute.incoming() {
            held.push(c);
        }
    });
    let hosts = format!(
        "{}[[host]]\nname = \"gone\"\nssh = \"127.0.0.1\"\nport = {closed}\ndir = \"{}\"\n\n\
         [[host]]\nname = \"mute\"\nssh = \"127.0.0.1\"\nport = {mute_port}\ndir = \"{}\"\n",
        lab.host_toml(2),
        gone_dir.display(),
        gone_dir.display()
    );
    let repo = repo_with(&hosts, "");
    // h1's dir is there already, writable by anyone.
    {
        use std::os::unix::fs::PermissionsExt;
        let d = &lab.server("h1").dir;
        std::fs::create_dir_all(d).expect("dir");
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let (code, v, err) = hosts_json(&repo, &lab);
    assert_eq!(code, 5, "one host does not answer: {v}\n{err}");
    let bin = std::fs::read(env!("CARGO_BIN_EXE_orch")).expect("orch");
    let id = {
        let out = std::process::Command::new("git")
            .args(["hash-object", env!("CARGO_BIN_EXE_orch")])
            .output()
            .expect("git hash-object");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    };
    for name in ["h1", "h2"] {
        let h = host(&v, name);
        assert_eq!(h["answers"], true, "{h}");
        assert_eq!(h["usable"], true, "{h}");
        assert_eq!(h["copied"], true, "the first check copies orch: {h}");
        let abi = h["landlock_abi"].as_u64().expect("abi");
        assert_eq!(abi, u64::from(landlock_abi_here()), "{h}");
        assert!(
            h["git"].as_str().expect("git").starts_with("git version "),
            "{h}"
        );
        assert!(h["free_bytes"].as_u64().expect("free") > 0, "{h}");
        assert!(h["clients"].is_array(), "{h}");
        // Three commands (the check, the copy, the probe) over one shared connection.
        assert_eq!(
            lab.accepted(name),
            2,
            "one connection of the lab's, one of orch's"
        );
        // The host's dir is made, writable by its user only.
        use std::os::unix::fs::PermissionsExt;
        for d in [
            lab.server(name).dir.clone(),
            lab.server(name).dir.join("bin"),
        ] {
            let mode = std::fs::metadata(&d).expect("dir").permissions().mode();
            assert_eq!(mode & 0o022, 0, "{}: {mode:o}", d.display());
        }
        // orch's copy in the host's own dir, byte for byte, named by its blob id.
        let copy = lab.server(name).dir.join("bin").join(format!("orch-{id}"));
        assert_eq!(
            std::fs::read(&copy).expect("the copy"),
            bin,
            "{}",
            copy.display()
        );
    }
    let gone = host(&v, "gone");
    assert_eq!(gone["answers"], false, "{gone}");
    assert_eq!(gone["usable"], false, "{gone}");
    assert_eq!(gone["cause"], "connection_refused", "{gone}");
    assert!(
        gone["error"]
            .as_str()
            .expect("why")
            .contains("Connection refused"),
        "{gone}"
    );
    assert!(
        !gone_dir.exists(),
        "nothing made for a host that does not answer"
    );
    // The control sockets are never under the state directory (they are out of every agent's
    // reach, in orch's private directory), and `orch hosts` closed its connections.
    assert_eq!(
        sockets_under(&repo.root().join(".orch")),
        Vec::<String>::new()
    );

    // Again, without the dead host: ready, nothing copied twice; the plain output names each.
    let repo2 = repo_with(&lab.host_toml(1), "");
    let (code, v, err) = hosts_json(&repo2, &lab);
    assert_eq!(code, 0, "{v}\n{err}");
    for name in ["h1", "h2"] {
        assert_eq!(
            host(&v, name)["copied"],
            false,
            "same id: not sent again: {v}"
        );
    }
    // A copy changed on the host (another build, a tampered file) is replaced.
    let copy = lab.server("h1").dir.join("bin").join(format!("orch-{id}"));
    std::fs::write(&copy, b"#!/bin/sh\necho tampered\n").expect("tamper");
    let mut cmd = repo2.orch(&["hosts"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo2.run_cmd(&mut cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("h1  ready") && l.contains("orch copied")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("h2  ready") && l.contains("git version")),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&copy).expect("copy"),
        bin,
        "replaced by orch's own"
    );
    // Checked once, its identity is kept beside it: a copy changed in place with its size and
    // modification time kept (a byte flipped, the time set back) is still found changed (its
    // change time moved) and replaced.
    assert!(
        copy.with_file_name(format!("orch-{id}.checked")).is_file(),
        "the identity of the checked copy is kept"
    );
    let modified = std::fs::metadata(&copy)
        .expect("copy")
        .modified()
        .expect("mtime");
    let mut flipped = bin.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    std::fs::write(&copy, &flipped).expect("flip");
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .and_then(|f| f.set_modified(modified))
        .expect("set the time back");
    let (code, out, err) = repo2.run_cmd(&mut cmd);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("h1  ready") && l.contains("orch copied")),
        "{out}"
    );
    assert_eq!(std::fs::read(&copy).expect("copy"), bin, "replaced again");

    // A server that stops: that host does not answer, the other does.
    lab.stop("h2");
    let (code, v, _) = hosts_json(&repo2, &lab);
    assert_eq!(code, 5, "{v}");
    assert_eq!(host(&v, "h1")["usable"], true, "{v}");
    assert_eq!(host(&v, "h2")["answers"], false, "{v}");
}

/// The ABI of this machine's kernel, as orch reports it (`orch host-probe` run here).
fn landlock_abi_here() -> u8 {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(["host-probe", "--dir", "/"])
        .output()
        .expect("host-probe");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    v["landlock_abi"].as_u64().expect("abi") as u8
}

#[test]
fn bad_host_input_is_refused_with_file_and_line_and_nothing_is_written() {
    let cases = [
        (
            "[[host]]\nname = \"h1\"\nslots = 0\nssh = \"h1\"\n",
            "",
            "plans.toml:3:9",
            "`host.slots` must be at least 1",
        ),
        (
            "[[host]]\nname = \"h1\"\n",
            "",
            "plans.toml:1:1",
            "a `[[host]]` table needs `ssh`",
        ),
        (
            "[[host]]\nname = \"h1\"\nssh = \"h1\"\n\n[[host]]\nname = \"h1\"\nssh = \"h2\"\n",
            "",
            "plans.toml:6:8",
            "host `h1` is defined twice",
        ),
        (
            "",
            "executor = \"ssh\"\n",
            "plans.toml:3:12",
            "needs at least one `[[host]]`",
        ),
    ];
    for (hosts, defaults, at, what) in cases {
        let repo = repo_with(hosts, defaults);
        for cmd in [&["check"][..], &["hosts"], &["up"]] {
            let (code, out, err) = repo.run(cmd);
            assert_eq!(code, 2, "orch {cmd:?}: {out}\n{err}");
            assert!(
                err.contains(at) && err.contains(what),
                "orch {cmd:?}: {err}"
            );
            assert!(
                !repo.root().join(".orch").exists(),
                "nothing written: orch {cmd:?}"
            );
        }
    }
    // An unknown host in a plan's `hosts`.
    let repo = repo_with(
        "[[host]]\nname = \"h1\"\nssh = \"h1\"\n",
        "executor = \"ssh\"\nnetwork = \"open\"\n",
    );
    let text = std::fs::read_to_string(repo.root().join("plans.toml")).expect("toml");
    std::fs::write(
        repo.root().join("plans.toml"),
        format!("{text}hosts = [\"h1\", \"h7\"]\n"),
    )
    .expect("write");
    let line = text.lines().count() + 1;
    let (code, _, err) = repo.run(&["check"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("plans.toml:{line}:")) && err.contains("names unknown host `h7`"),
        "{err}"
    );
    // `orch check` stays offline: a valid manifest of hosts that do not exist is fine.
    std::fs::write(
        repo.root().join("plans.toml"),
        format!("{text}hosts = [\"h1\"]\n"),
    )
    .expect("write");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// Every unix socket below `dir`.
fn sockets_under(dir: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::FileTypeExt as _;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_socket() {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[test]
fn orch_hosts_says_each_cause_with_its_fix_one_line_each() {
    if !sshd::available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let tools = sshd::path_without_git(tmp.path());
    let lab = sshd::Lab::start_with_env(
        &["h1", "nogit", "nolandlock"],
        &[
            ("nogit", &format!("PATH={}", tools.display())),
            // What the host's sshd sets to stand for a kernel without Landlock.
            ("nolandlock", "ORCH_TEST_HOST_NO_LANDLOCK=1"),
        ],
    );
    let t = lab.tmp.path();
    let port = lab.server("h1").port;
    // A key the host does not know, and another host key.
    for k in ["other", "other_host"] {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(t.join(k))
            .output()
            .expect("ssh-keygen");
        assert!(out.status.success());
    }
    // Three aliases of h1's server: one offers the unknown key only, one expects another host
    // key, one names a key file that does not exist.
    let config = std::fs::read_to_string(t.join("ssh_config")).expect("config");
    let id = format!("  IdentityFile {}\n", t.join("id").display());
    assert!(config.contains(&id), "{config}");
    let config = format!(
        "Host badkey\n  HostName 127.0.0.1\n  Port {port}\n  HostKeyAlias orch-test-host\n  IdentityFile {other}\n\n\
         Host badhostkey\n  HostName 127.0.0.1\n  Port {port}\n  HostKeyAlias orch-other-host\n\n\
         Host nokeyfile\n  HostName 127.0.0.1\n  Port {port}\n  HostKeyAlias orch-test-host\n  IdentityFile {missing}\n\n\
         {}\nHost * !badkey !nokeyfile\n{id}",
        config.replace(&id, ""),
        other = t.join("other").display(),
        missing = t.join("missing_key").display(),
    );
    std::fs::write(t.join("ssh_config"), config).expect("config");
    let other_host = std::fs::read_to_string(t.join("other_host.pub")).expect("pub");
    let mut known = std::fs::read_to_string(t.join("known_hosts")).expect("known");
    known.push_str(&format!("orch-other-host {other_host}"));
    std::fs::write(t.join("known_hosts"), known).expect("known");
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = t.join("elsewhere");
    let mut hosts = lab.host_toml(1);
    for alias in ["badkey", "badhostkey", "nokeyfile"] {
        hosts.push_str(&format!(
            "[[host]]\nname = \"{alias}\"\nssh = \"{alias}\"\ndir = \"{}\"\n\n",
            dir.display()
        ));
    }
    hosts.push_str(&format!(
        "[[host]]\nname = \"gone\"\nssh = \"127.0.0.1\"\nport = {closed}\ndir = \"{}\"\n\n",
        dir.display()
    ));
    let repo = repo_with(&hosts, "");
    // What each says: the cause (`cause` of the JSON) and the fix.
    let want = [
        (
            "nogit",
            "no_git",
            "no git on the PATH",
            "install git on the host",
        ),
        (
            "badkey",
            "key_refused",
            "the host refused the key",
            "authorized_keys",
        ),
        (
            "badhostkey",
            "host_key_changed",
            "host key differs",
            "-R \"orch-other-host\"`",
        ),
        (
            "nokeyfile",
            "key_file_missing",
            "the key file is missing",
            "missing_key` does not exist",
        ),
        (
            "gone",
            "connection_refused",
            "connection refused",
            "start sshd on the host",
        ),
        (
            "nolandlock",
            "no_landlock",
            "no Landlock, and its agents must be confined",
            "a kernel with Landlock on the host, or `sandbox = \"off\"` in its `[[host]]` at line",
        ),
    ];
    let (code, v, err) = hosts_json(&repo, &lab);
    assert_eq!(code, 5, "{v}\n{err}");
    assert_eq!(host(&v, "h1")["usable"], true, "{v}");
    for (name, cause, _, fix) in want {
        let h = host(&v, name);
        assert_eq!(h["usable"], false, "{h}");
        assert_eq!(h["cause"], cause, "{h}");
        assert!(h["fix"].as_str().expect("fix").contains(fix), "{h}");
    }
    let mut cmd = repo.orch(&["hosts"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 5, "{out}\n{err}");
    assert_eq!(out.lines().count(), 7, "one line a host:\n{out}");
    for (name, _, says, fix) in want {
        let l = out
            .lines()
            .find(|l| l.starts_with(&format!("{name}  ")))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        assert!(
            l.contains(says) && l.contains("fix: ") && l.contains(fix),
            "{name}: {l}"
        );
        assert!(!l.contains("\\r") && !l.contains("\\n"), "{name}: {l}");
        assert!(!l.contains("ready"), "{name}: {l}");
    }
    assert!(!dir.exists(), "nothing made where orch could not log in");
    assert!(
        !lab.server("nogit").dir.join("bin").exists(),
        "no copy of orch sent to a host without git"
    );
}

#[test]
fn orch_hosts_after_a_host_moves_to_a_port_where_nothing_listens_says_so() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let repo = repo_with(&lab.host_toml(1), "");
    let (code, v, err) = hosts_json(&repo, &lab);
    assert_eq!(code, 0, "{v}\n{err}");
    let closed = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let toml = std::fs::read_to_string(repo.root().join("plans.toml")).expect("toml");
    std::fs::write(
        repo.root().join("plans.toml"),
        toml.replacen("slots = 1\n", &format!("slots = 1\nport = {closed}\n"), 1),
    )
    .expect("write");
    let mut cmd = repo.orch(&["hosts"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 5, "{out}\n{err}");
    assert!(
        out.starts_with("h1  cannot connect  connection refused")
            && out.contains(&format!("port {closed}"))
            && out.contains("fix: start sshd on the host"),
        "{out}"
    );
}

/// A program an agent runs on its host is looked for there, not here: a plan whose every host
/// lacks it is refused at the start (exit 6, the host and the program named, nothing made, no
/// attempt spent); one whose program this machine lacks but its host has runs (the custom agent
/// below is a script only the host's PATH has).
#[test]
fn an_agents_program_is_looked_for_on_its_hosts_not_here() {
    if !sshd::available() {
        return;
    }
    use std::os::unix::fs::PermissionsExt as _;
    let host_bin = tempfile::tempdir().expect("bin");
    let tool = host_bin.path().join("hosttool");
    std::fs::write(
        &tool,
        "#!/bin/sh\necho \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\"\n",
    )
    .expect("tool");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let lab = sshd::Lab::start_with(
        &["h1"],
        &format!(
            "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin",
            host_bin.path().display()
        ),
    );
    for (agent, command, runs) in [
        // A preset whose client the host has not (and neither has this machine's PATH here).
        ("claude", None, false),
        ("missing", Some("[\"no-such-tool-anywhere\", \"x\"]"), false),
        ("mine", Some("[\"hosttool\"]"), true),
    ] {
        let repo = Repo::builder().identity_in_config().build();
        repo.write("plans/p.md", "# P\n\n## Phase 1: One\n- [ ] 1.1 Step\n");
        let agents = command.map_or(String::new(), |c| {
            format!("[agents.{agent}]\ncommand = {c}\nreport = \"exit\"\n\n")
        });
        repo.write(
            "plans.toml",
            &format!(
                "{}[defaults]\nagent = \"{agent}\"\nexecutor = \"ssh\"\nnetwork = \"open\"\nretries = 0\n\n{agents}\
                 [[plan]]\nname = \"p\"\nfile = \"plans/p.md\"\n",
                lab.host_toml(1)
            ),
        );
        repo.commit_all("plans");
        let before = repo.refs();
        let mut cmd = repo.orch(&["up"]);
        cmd.env("PATH", lab.path());
        let (code, out, err) = support::code_out_err(&support::wait_within(
            cmd.spawn().expect("orch up"),
            repo.timeout(),
            "orch up",
        ));
        if runs {
            assert_eq!(code, 0, "{agent}: {out}{err}");
            assert_eq!(repo.git(&["show", "plan/p:task-1.1.txt"]).trim(), "1.1");
            continue;
        }
        let program = command.map_or("claude", |_| "no-such-tool-anywhere");
        assert_eq!(code, 6, "{agent}: {out}{err}");
        assert!(
            err.contains(&format!("host `h1` has no `{program}` on its PATH")),
            "{agent}: {err}"
        );
        assert_eq!(repo.refs(), before, "{agent}: a ref was made");
        assert!(!repo.worktree("p").exists(), "{agent}: a worktree was made");
    }
}
