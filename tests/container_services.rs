//! `[[service]]` of container plans end to end, through a real `orch up` and real podman: a
//! real PostgreSQL (Debian's package, in the local image `localhost/orch-test-postgres` that
//! `.ci/podman images` builds offline) beside each plan's container, in its network. A check
//! and a `verify` that need it pass with it and fail without; two plans' databases are their
//! own and neither reaches the other's; a killed `orch up` leaves no container of its plan or
//! services after the next start; a service that does not get ready loses the attempt without
//! spending a retry; bad `[[service]]` settings are refused before anything runs. Skipped with
//! a message without podman or the images, unless `ORCH_REQUIRE_PODMAN` is set.

use crate::support;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::podman::{POSTGRES, of_plan, postgres_available, running_id};
use support::{Repo, toml_array};

/// The service of these tests: the image's PostgreSQL on the port orch gives it, ready when
/// `pg_isready` says so.
const DB: &str = r#"
[[service]]
name = "db"
image = "localhost/orch-test-postgres:latest"
env = { PGPORT = "${ORCH_SERVICE_PORT}" }
ready = ["pg_isready", "-h", "127.0.0.1", "-U", "postgres", "-q"]
ready_timeout = "60s"
"#;

/// `psql` of the plan's own database (its address as orch gives it) running `sql`, unaligned
/// and quiet: what a check or an agent writes.
fn psql(sql: &str) -> String {
    format!(
        "psql -X -v ON_ERROR_STOP=1 -h \"$ORCH_SERVICE_DB_HOST\" -p \"$ORCH_SERVICE_DB_PORT\" -U postgres -tAc \"{sql}\""
    )
}

/// A repository of plans `names` (one task each) run by the POSIX sh `script` in containers of
/// the postgres image (which has the client), `defaults` and `plan` lines added, the `DB`
/// service defined.
fn repo_of(names: &[&str], script: &str, defaults: &str, plan: &str) -> Repo {
    let plans: Vec<(&str, &str)> = names.iter().map(|n| (*n, plan)).collect();
    support::podman::repo(
        &plans,
        &support::one_task("P", "Work"),
        &toml_array(&["sh", "-c", script]),
        "",
        POSTGRES,
        defaults,
        DB,
    )
}

#[test]
fn a_check_and_verify_that_need_the_service_pass_with_it_and_fail_without() {
    if !postgres_available() {
        return;
    }
    // The check and verify ask the database; without the service its variables are unset and
    // they try the port the service would have (`ORCH_PORT + 1` of the plan's block).
    let ask = |what: &str| {
        format!(
            "test \"$(psql -X -h 127.0.0.1 -p \"${{ORCH_SERVICE_DB_PORT:-$((${{ORCH_PORT:-0}} + 1))}}\" -U postgres -tAc \"select '{what}'\")\" = {what}"
        )
    };
    for with in [true, false] {
        let plan = if with { "services = [\"db\"]" } else { "" };
        let defaults = format!(
            "integrate = \"off\"\ncheck = {}\nverify = {}",
            toml_array(&["sh", "-c", &ask("checked")]),
            toml_array(&["sh", "-c", &ask("verified")])
        );
        let repo = repo_of(&["svcchk"], "echo ok > work.txt", &defaults, plan);
        let started = Instant::now();
        let (code, out, err) = repo.run(&["up", "--json"]);
        eprintln!(
            "services {with}: orch up of 1 task in a container: {:.2?}",
            started.elapsed()
        );
        let status = repo.task("svcchk", "1.1")["status"].clone();
        if with {
            assert_eq!(code, 0, "{out}\n{err}");
            assert_eq!(status, "completed");
            assert_eq!(repo.git(&["show", "plan/svcchk:work.txt"]), "ok");
            let log = String::from_utf8_lossy(&repo.read(".orch/logs/svcchk/1.1.log")).into_owned();
            assert!(
                log.contains("service `db` of plan `svcchk` ready after"),
                "{log}"
            );
            // verify, in a container of its own, with a database of its own.
            let main = repo.rev("main");
            let (code, out, err) = repo.run(&["merge", "svcchk"]);
            let vlog = String::from_utf8_lossy(&repo.read(".orch/logs/svcchk/merge-verify.log"))
                .into_owned();
            assert_eq!(code, 0, "{out}\n{err}\n{vlog}");
            assert_ne!(repo.rev("main"), main, "main did not move");
            assert!(repo.tree_files("main").contains(&"work.txt".to_string()));
        } else {
            assert_ne!(status, "completed", "{out}\n{err}");
            assert!(
                !repo.branch_exists("plan/svcchk") || {
                    !repo
                        .tree_files("plan/svcchk")
                        .contains(&"work.txt".to_string())
                }
            );
            let log =
                String::from_utf8_lossy(&repo.read(".orch/logs/svcchk/1.1.check.log")).into_owned();
            assert!(log.contains("exit status 1"), "{log}");
        }
        // Nothing of the run is left: neither the plan's container nor its service's.
        assert_eq!(of_plan("svcchk"), Vec::new());
    }
}

/// A loopback server that answers each of the first `n` connections with one byte once all
/// `n` are open (or after `within`), and tells how many were open at once then.
fn barrier(n: usize, within: Duration) -> (u16, std::sync::mpsc::Receiver<usize>) {
    // Below the ports orch gives services without `port` (42000 on): an allowed endpoint there
    // is refused at load, and the kernel's own choice (port 0) is often above.
    let start = 30_000 + (std::process::id() % 10_000) as u16;
    let listener = (start..42_000)
        .chain(30_000..start)
        .find_map(|p| TcpListener::bind(("127.0.0.1", p)).ok())
        .expect("a free loopback port below 42000");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + within;
        let mut open = Vec::new();
        while open.len() < n && Instant::now() < deadline {
            match listener.accept() {
                Ok((c, _)) => open.push(c),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let _ = tx.send(open.len());
        for mut c in open {
            let _ = c.write_all(b"g");
            let mut rest = Vec::new();
            let _ = c.read_to_end(&mut rest);
        }
    });
    (port, rx)
}

/// The tries of one plan's agent on the other plan's service, in the probe's format
/// (`name allowed|denied detail`): its possible ports (every service port of the run's
/// blocks but its own) on the container's loopback, on this host's address, on the name
/// podman gives the host, on the other plan's container's name, through orch's proxy.
const OTHER_TRIES: &str = r#"
import os, socket, sys
own = int(os.environ["ORCH_SERVICE_DB_PORT"])
host_ip, other_box = sys.argv[1], sys.argv[2]
# The service ports of the blocks beside its own (each plan's block is 10 ports).
ports = [p for p in (own - 20, own - 10, own + 10, own + 20) if 0 < p < 65536]
def one(name, fn):
    try:
        ok, detail = fn()
    except Exception as e:
        ok, detail = False, type(e).__name__
    print("%s %s %s" % (name, "allowed" if ok else "denied", detail))
def connect(host, port):
    s = socket.create_connection((host, port), 3)
    s.close()
    return True, "connected"
def proxied(host, port):
    h, p = os.environ["HTTPS_PROXY"][len("http://"):].rsplit(":", 1)
    s = socket.create_connection((h, int(p)), 3)
    s.sendall(b"CONNECT %s:%d HTTP/1.1\r\n\r\n" % (host.encode(), port))
    head = s.recv(200).split(b"\r\n")[0]
    return b" 200 " in head + b" ", head.decode().replace(" ", "_")
for port in ports:
    for host in ("127.0.0.1", "::1", host_ip, "host.containers.internal", other_box):
        one("%s:%d" % (host, port), lambda: connect(host, port))
    one("proxied:%d" % port, lambda: proxied("127.0.0.1", port))
"#;

/// This host's address on its default route (no packet is sent), or `None`.
fn host_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback())
}

#[test]
fn two_plans_services_are_their_own_and_neither_reaches_the_others() {
    if !postgres_available() || !support::landlock() {
        return;
    }
    // Both agents write a row of their own, wait for each other (so that both plans' services
    // run), read their database back and try the other's every way they can.
    let (port, met) = barrier(2, Duration::from_secs(120));
    let host_ip = host_address().map_or("127.0.0.9".to_string(), |ip| ip.to_string());
    let script = format!(
        "{} && {} && \
         python3 -c 'import socket; s = socket.create_connection((\"127.0.0.1\", {port}), 150); s.recv(1)' && \
         {} > rows.txt && \
         other=$( [ \"$ORCH_PLAN\" = svca ] && echo svcb || echo svca ) && \
         python3 tries.py {host_ip} \"orch-$other\" > tries.txt",
        psql("create table t (plan text)"),
        psql("insert into t values ('$ORCH_PLAN')"),
        psql("select string_agg(plan, ',') from t"),
    );
    let repo = repo_of(
        &["svca", "svcb"],
        &script,
        &format!("sandbox = \"on\"\nnetwork_allow = [\"127.0.0.1:{port}\"]"),
        "services = [\"db\"]",
    );
    repo.write("tries.py", OTHER_TRIES);
    repo.commit_all("tries");
    let started = Instant::now();
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    eprintln!(
        "orch up of 2 plans with a database each: {:.2?}",
        started.elapsed()
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        met.recv_timeout(Duration::from_secs(5)).expect("barrier"),
        2,
        "the two plans did not run side by side"
    );
    for (me, other) in [("svca", "svcb"), ("svcb", "svca")] {
        assert_eq!(repo.task(me, "1.1")["status"], "completed");
        // Its own row, not the other's.
        assert_eq!(repo.git(&["show", &format!("plan/{me}:rows.txt")]), me);
        let tries = repo.git(&["show", &format!("plan/{me}:tries.txt")]);
        eprintln!("{me} tried:\n{tries}");
        let lines: Vec<&str> = tries.lines().collect();
        assert!(lines.len() >= 12, "{me}: {tries}");
        for l in &lines {
            assert!(
                l.contains(" denied "),
                "{me} reached {other}'s service: {l}\n{tries}"
            );
        }
    }
    assert_eq!(of_plan("svca"), Vec::new());
    assert_eq!(of_plan("svcb"), Vec::new());
}

#[test]
fn a_killed_orch_up_leaves_no_container_of_its_plan_or_services_after_the_next_start() {
    if !postgres_available() {
        return;
    }
    // The first attempt marks that it started (its database answering) and waits; the next
    // run's attempt (told by a variable of orch's environment, passed into the container: the
    // next start empties the plan's report directory) completes.
    let script = format!(
        "if [ -n \"$ORCH_TEST_GO\" ]; then echo done > work.txt; exit 0; fi; \
         {} > /dev/null && touch \"$ORCH_REPORT_DIR/../started-before\"; sleep 600",
        psql("select 1")
    );
    let repo = repo_of(&["svckill"], &script, "", "services = [\"db\"]");
    let mark = repo
        .root()
        .join(".orch/state/.reports/svckill/started-before");
    let mut child = repo
        .orch(&["up", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    support::process::wait_for("the attempt to start beside its service", || mark.exists());
    let old = of_plan("svckill");
    let services: Vec<&(String, String, String)> =
        old.iter().filter(|(_, _, s)| s == "db").collect();
    assert_eq!(services.len(), 1, "{old:?}");
    assert_eq!(
        old.len(),
        2,
        "the plan's container and its service: {old:?}"
    );
    child.kill().expect("kill -9");
    let _ = child.wait();
    // podman does not know orch is gone: both are there.
    assert_eq!(of_plan("svckill").len(), 2);
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env("ORCH_TEST_GO", "1"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.git(&["show", "plan/svckill:work.txt"]), "done");
    // The dead run's containers were swept at the start, the new run's removed at its end.
    assert_eq!(of_plan("svckill"), Vec::new());
}

#[test]
fn a_service_that_does_not_get_ready_loses_the_attempt_without_spending_a_retry() {
    if !support::podman::available() {
        return;
    }
    // A command service (in a container of the plan's image): an HTTP server, ready when
    // /tmp/ok exists in its container, which the test makes in its second instance only. Its
    // log says something with a terminal escape in it. The agent, confined (orch's proxy in its
    // variables), asks it over HTTP.
    let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
    repo.write("docs/plans/svcslow.md", &support::one_task("P", "Work"));
    let agent = "python3 -c 'import os, urllib.request as u\n\
                 url = \"http://%s:%s/\" % (os.environ[\"ORCH_SERVICE_WEB_HOST\"], os.environ[\"ORCH_SERVICE_WEB_PORT\"])\n\
                 print(u.urlopen(url, timeout=10).status)' > work.txt";
    repo.manifest(
        &toml_array(&["sh", "-c", agent]),
        "report = \"exit\"",
        &format!(
            "retries = 0\nexecutor = \"container\"\nimage = \"{}\"",
            support::podman::IMAGE
        ),
        &[("svcslow", "services = [\"web\"]")],
    );
    let text = std::fs::read_to_string(repo.root().join("plans.toml")).expect("manifest");
    let service = format!(
        "\n[[service]]\nname = \"web\"\ncommand = {}\nready = [\"test\", \"-e\", \"/tmp/ok\"]\nready_timeout = \"6s\"\n",
        toml_array(&[
            "sh",
            "-c",
            "echo starting on $PORT; printf 'screen \\033[2J cleared\\n' >&2; \
             exec python3 -m http.server $PORT --bind 127.0.0.1"
        ])
    );
    repo.write("plans.toml", &format!("{text}{service}"));
    repo.commit_all("plans");
    let child = repo.orch(&["up"]).spawn().expect("spawn");
    // The first instance is left alone; the second is made ready.
    let mut first: Option<(String, String)> = None;
    support::process::wait_for("a second instance of the service", || {
        let Some((name, _, _)) = of_plan("svcslow").into_iter().find(|(_, _, s)| s == "web") else {
            return false;
        };
        let Some(id) = running_id(&name) else {
            return false;
        };
        match &first {
            None => {
                first = Some((name, id));
                false
            }
            Some((_, id1)) if *id1 == id => false,
            Some(_) => {
                let ok = std::process::Command::new("podman")
                    .args(["exec", &name, "touch", "/tmp/ok"])
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "podman exec touch");
                true
            }
        }
    });
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (code, stdout, stderr) = support::code_out_err(&out);
    let all = format!("{stdout}{stderr}");
    assert_eq!(code, 0, "{all}");
    // Done at its first counted attempt: the lost one spent no retry (`retries = 0`).
    assert_eq!(repo.task("svcslow", "1.1")["status"], "completed", "{all}");
    assert_eq!(repo.git(&["show", "plan/svcslow:work.txt"]), "200");
    let said = all
        .lines()
        .find(|l| l.contains("attempt lost (not counted"))
        .unwrap_or_else(|| panic!("the console does not say the attempt was lost:\n{all}"));
    for want in [
        "service `web` of plan `svcslow` did not get ready within 6s",
        "`test -e /tmp/ok` never succeeded",
        &format!(
            "starting on {}",
            support::block_of(repo.root(), ".orch/worktrees/svcslow") + 1
        ),
        "screen \\u{1b}[2J cleared",
    ] {
        assert!(said.contains(want), "{want:?} not in {said}");
    }
    assert!(
        !all.contains('\u{1b}'),
        "an escape reached the console:\n{all}"
    );
    assert_eq!(of_plan("svcslow"), Vec::new());
}

#[test]
fn bad_service_settings_are_refused_naming_their_line_before_anything_runs() {
    // No podman needed: refused while reading plans.toml.
    let repo = Repo::new();
    repo.write("docs/plans/p.md", &support::one_task("P", "x"));
    let container = format!("executor = \"container\"\nimage = \"{POSTGRES}\"");
    let db = "[[service]]\nname = \"db\"\nimage = \"localhost/pg\"\n";
    let cases: Vec<(String, String, &str, &str, &str)> = vec![
        // (defaults, services, plan lines, the offending text, what the error says)
        (
            container.clone(),
            db.to_string(),
            "services = [\"dbb\"]",
            "\"dbb\"",
            "names unknown service `dbb`",
        ),
        (
            container.clone(),
            format!("{db}\n[[service]]\nname = \"db\"\ncommand = [\"x\"]\n"),
            "services = [\"db\"]",
            "name = \"db\"\ncommand",
            "service `db` is defined twice",
        ),
        (
            container.clone(),
            "[[service]]\nname = \"db\"\nimage = \"localhost/pg\"\ncommand = [\"pg\"]\n".into(),
            "",
            "command = [\"pg\"]",
            "has both `image` and `command`",
        ),
        (
            container.clone(),
            "[[service]]\nname = \"db\"\nport = 5432\n".into(),
            "",
            "name = \"db\"\nport",
            "has neither `image` nor `command`",
        ),
        (
            container.clone(),
            "[[service]]\nname = \"DB\"\nimage = \"localhost/pg\"\n".into(),
            "",
            "\"DB\"",
            "service name `DB` is not allowed",
        ),
        (
            container.clone(),
            "[[service]]\nname = \"db\"\nimage = \"localhost/pg\"\nport = 80\n".into(),
            "",
            "port = 80",
            "must be 1024 to 41999",
        ),
        (
            container.clone(),
            "[[service]]\nname = \"db\"\nimgae = \"localhost/pg\"\n".into(),
            "",
            "imgae",
            "did you mean `image`",
        ),
        (
            "executor = \"local\"".into(),
            db.to_string(),
            "services = [\"db\"]",
            "services = [\"db\"]",
            "not yet available there",
        ),
        (
            format!("{container}\nports = 1"),
            db.to_string(),
            "services = [\"db\"]",
            "services = [\"db\"]",
            "set `ports = 2` or more",
        ),
        (
            format!("{container}\nservices = [\"db\"]\nnetwork = \"open\""),
            db.to_string(),
            "",
            "services = [\"db\"]",
            "network = \"open\"`: not yet",
        ),
    ];
    for (defaults, services, plan, at, want) in cases {
        let text = format!(
            "[defaults]\nagent = \"a\"\nretries = 0\n{defaults}\n\n[agents.a]\ncommand = [\"true\"]\nreport = \"exit\"\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{plan}\n\n{services}"
        );
        let line = text[..text.find(at).unwrap_or_else(|| panic!("{at:?} in\n{text}"))]
            .matches('\n')
            .count()
            + 1;
        repo.write("plans.toml", &text);
        repo.commit_all("plans");
        let before = support::disk_snapshot(repo.root());
        let (code, out, err) = repo.run(&["up"]);
        let all = format!("{out}{err}");
        assert_eq!(code, 2, "{want}: exit {code}\n{all}");
        assert!(all.contains(want), "wanted {want:?} in\n{all}");
        assert!(
            all.contains(&format!("plans.toml:{line}:")),
            "{want}: wanted line {line} in\n{all}"
        );
        assert!(!repo.worktree("p").exists(), "{want}");
        let strip = |s: &std::collections::BTreeSet<(String, String)>| -> Vec<(String, String)> {
            s.iter()
                .filter(|(p, _)| !p.starts_with(".git/"))
                .cloned()
                .collect()
        };
        assert_eq!(
            strip(&before),
            strip(&support::disk_snapshot(repo.root())),
            "{want}"
        );
    }
}

#[test]
fn an_agent_that_exits_as_a_waiter_would_is_failed_all_the_same() {
    if !support::podman::available() {
        return;
    }
    // The waiter's exit status (98) alone, and with a file named as its record wherever the
    // agent can write (its TMPDIR, its report directories, the container's own /tmp): each
    // attempt counts (`retries = 0`: the task fails), none is called lost.
    let script = "if [ \"$ORCH_PLAN\" = svcfake2 ]; then \
                  for d in \"$TMPDIR\" \"$ORCH_REPORT_DIR\" \"$ORCH_REPORT_DIR/..\" /tmp; do \
                  echo 'service `web` of plan `svcfake2` did not get ready' > \"$d/not-ready-1.1-1\"; done; fi; \
                  exit 98";
    let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
    for p in ["svcfake1", "svcfake2"] {
        repo.write(
            &format!("docs/plans/{p}.md"),
            &support::one_task("P", "Work"),
        );
    }
    repo.manifest(
        &toml_array(&["sh", "-c", script]),
        "report = \"exit\"\nnetwork = \"none\"",
        &format!(
            "retries = 0\nexecutor = \"container\"\nimage = \"{}\"\nservices = [\"web\"]",
            support::podman::IMAGE
        ),
        &[("svcfake1", ""), ("svcfake2", "")],
    );
    let text = std::fs::read_to_string(repo.root().join("plans.toml")).expect("manifest");
    let service = format!(
        "\n[[service]]\nname = \"web\"\ncommand = {}\n",
        toml_array(&["python3", "-m", "http.server", "${ORCH_SERVICE_PORT}"])
    );
    repo.write("plans.toml", &format!("{text}{service}"));
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up", "--json"]);
    assert_ne!(code, 0, "{out}\n{err}");
    let events = support::events(&out);
    for p in ["svcfake1", "svcfake2"] {
        assert_eq!(repo.task(p, "1.1")["status"], "failed", "{p}: {out}");
        let failed: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["event"] == "task_failed" && e["plan"] == p)
            .collect();
        assert_eq!(failed.len(), 1, "{p}: {failed:?}");
        assert_eq!(failed[0]["attempt"], 1, "{p}: {failed:?}");
    }
    assert!(
        !out.contains("attempt lost"),
        "an agent's exit made its attempt lost:\n{out}"
    );
    assert_eq!(of_plan("svcfake1"), Vec::new());
    assert_eq!(of_plan("svcfake2"), Vec::new());
}

/// The service of the dying tests: an HTTP server on its port that exits 3 on `GET /die`,
/// saying so (with a terminal escape) in its log.
const DYING: &str = r#"import os, sys, http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b'bye'); self.wfile.flush()
        if self.path == '/die':
            print('dying now \033[2J', flush=True); os._exit(3)
http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
"#;

/// The agent of the dying tests: asks its service to die, waits until its port is closed, then
/// does its work.
const KILLER: &str = r#"import os, socket, urllib.request as u
h, p = os.environ['ORCH_SERVICE_WEB_HOST'], int(os.environ['ORCH_SERVICE_WEB_PORT'])
try:
    u.urlopen('http://%s:%d/die' % (h, p), timeout=10).read()
except Exception:
    pass
while True:
    try:
        socket.create_connection((h, p), 1).close()
    except OSError:
        break
open('work.txt', 'w').write('ok')
"#;

#[test]
fn a_service_that_dies_under_an_attempt_is_said_and_a_check_whose_wait_fails_fails() {
    if !support::podman::available() {
        return;
    }
    // The service's first instance is made ready by the test; the agent makes it exit (3).
    // The check then starts it anew and waits for it: the new instance never gets ready, or
    // its container is killed while the check waits. Either way the check fails (`retries = 0`:
    // the task fails at its first attempt), it is no lost attempt, and the console says both
    // the service that stopped under the attempt and why the check did not run.
    for dies in [false, true] {
        let plan = if dies { "svcdie2" } else { "svcdie1" };
        let service = format!(
            "\n[[service]]\nname = \"web\"\ncommand = {}\nready = [\"test\", \"-e\", \"/tmp/ok\"]\nready_timeout = \"5s\"\n",
            toml_array(&["python3", "-c", DYING, "${ORCH_SERVICE_PORT}"])
        );
        let repo = support::podman::repo(
            &[(plan, "services = [\"web\"]")],
            &support::one_task("P", "Work"),
            &toml_array(&["python3", "-c", KILLER]),
            "network = \"none\"",
            support::podman::IMAGE,
            "check = [\"true\"]",
            &service,
        );
        let child = repo.orch(&["up", "--json"]).spawn().expect("spawn");
        let mut first: Option<String> = None;
        support::process::wait_for("a second instance of the service", || {
            let Some((name, _, _)) = of_plan(plan).into_iter().find(|(_, _, s)| s == "web") else {
                return false;
            };
            let Some(id) = running_id(&name) else {
                return false;
            };
            let podman = |args: &[&str]| {
                std::process::Command::new("podman")
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            };
            match &first {
                None => {
                    assert!(podman(&["exec", &name, "touch", "/tmp/ok"]), "podman exec");
                    first = Some(id);
                    false
                }
                Some(id1) if *id1 == id => false,
                Some(_) => {
                    if dies {
                        assert!(podman(&["kill", &name]), "podman kill");
                    }
                    true
                }
            }
        });
        let out = support::wait_within(child, repo.timeout(), "orch up");
        let (code, stdout, stderr) = support::code_out_err(&out);
        let all = format!("{stdout}{stderr}");
        assert_ne!(code, 0, "{all}");
        // The agent's work was done, its check did not run: the task failed, at attempt 1.
        let task = repo.task(plan, "1.1");
        assert_eq!(task["status"], "failed", "{all}");
        let error = task["error"].as_str().unwrap_or_default().to_string();
        let want = format!(
            "the check `true` did not run: service `web` of plan `{plan}` did not get ready within 5s (`test -e /tmp/ok` never succeeded"
        );
        assert!(
            error.contains(&want),
            "{want:?} not in the status's {error:?}"
        );
        if dies {
            assert!(error.contains("its container stopped"), "{error}");
        }
        let events = support::events(&stdout);
        let failed: Vec<&serde_json::Value> = events
            .iter()
            .filter(|e| e["event"] == "task_failed" && e["plan"] == plan)
            .collect();
        assert_eq!(failed.len(), 1, "{failed:?}\n{all}");
        assert_eq!(failed[0]["attempt"], 1, "{failed:?}");
        assert!(
            failed[0]["error"]
                .as_str()
                .unwrap_or_default()
                .contains(&want),
            "{failed:?}"
        );
        assert!(!all.contains("attempt lost"), "a lost attempt:\n{all}");
        // The service that stopped under the attempt, on the console: its exit status and its
        // log's last line, escaped.
        let said = events
            .iter()
            .filter(|e| e["event"] == "note")
            .filter_map(|e| e["message"].as_str())
            .find(|m| m.contains("stopped after it got ready"))
            .unwrap_or_else(|| panic!("no note of the stopped service:\n{all}"));
        for want in [
            format!("service `web` of plan `{plan}` stopped after it got ready"),
            "with exit status 3".to_string(),
            "dying now \\u{1b}[2J".to_string(),
        ] {
            assert!(said.contains(&want), "{want:?} not in {said}");
        }
        assert!(
            !all.contains('\u{1b}'),
            "an escape reached the console:\n{all}"
        );
        let log = String::from_utf8_lossy(&repo.read(&format!(".orch/logs/{plan}/1.1.check.log")))
            .into_owned();
        assert!(log.contains("check did not run"), "{log}");
        assert_eq!(of_plan(plan), Vec::new());
    }
}

#[test]
fn three_services_start_at_once_and_the_agent_reaches_each() {
    if !support::podman::available() {
        return;
    }
    // Three command services (an HTTP server each, in containers of the plan's image), ready
    // when their port answers; the agent asks each at the address orch gives it.
    let agent = r#"import os, urllib.request as u
got = []
for n in ("A", "B", "C"):
    url = "http://%s:%s/" % (os.environ["ORCH_SERVICE_WEB%s_HOST" % n], os.environ["ORCH_SERVICE_WEB%s_PORT" % n])
    got.append("%s %s %d" % (n, os.environ["ORCH_SERVICE_WEB%s_PORT" % n], u.urlopen(url, timeout=10).status))
open("work.txt", "w").write("\n".join(got))
"#;
    let mut services = String::new();
    for n in ["weba", "webb", "webc"] {
        services.push_str(&format!(
            "\n[[service]]\nname = \"{n}\"\ncommand = {}\n",
            toml_array(&[
                "python3",
                "-m",
                "http.server",
                "${ORCH_SERVICE_PORT}",
                "--bind",
                "127.0.0.1"
            ])
        ));
    }
    let repo = support::podman::repo(
        &[("svc3", "services = [\"weba\", \"webb\", \"webc\"]")],
        &support::one_task("P", "Work"),
        &toml_array(&["python3", "-c", agent]),
        "network = \"none\"",
        support::podman::IMAGE,
        "ports = 4",
        &services,
    );
    let started = Instant::now();
    let (code, out, err) = repo.run(&["up"]);
    eprintln!(
        "orch up of 1 task with 3 services: {:.2?}",
        started.elapsed()
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("svc3", "1.1")["status"], "completed");
    assert_eq!(repo.git(&["show", "plan/svc3:work.txt"]), {
        let f = support::block_of(repo.root(), ".orch/worktrees/svc3");
        format!("A {} 200\nB {} 200\nC {} 200", f + 1, f + 2, f + 3)
    });
    let log = String::from_utf8_lossy(&repo.read(".orch/logs/svc3/1.1.log")).into_owned();
    let line = log
        .lines()
        .find(|l| l.contains("3 service(s) of plan `svc3` started at once in"))
        .unwrap_or_else(|| panic!("no start of the services in the log:\n{log}"));
    eprintln!("{line}");
    for n in ["weba", "webb", "webc"] {
        assert!(
            log.contains(&format!("service `{n}` of plan `svc3` ready after")),
            "{n}: {log}"
        );
    }
    assert_eq!(of_plan("svc3"), Vec::new());
}
