//! orch's own channels: the control sockets of the SSH connections orch keeps to its `[[host]]`
//! machines. Whoever connects to one runs commands on the host as the lead's user, with no key and
//! no `ssh` of its own. A confined local agent, running while a plan of the same run works on a
//! host (so that the shared connection is up), looks for every socket it can name, each way it
//! could learn one (the state directory, orch's private directory, `/proc/net/unix`, the command
//! lines of every process, `/proc/<pid>/fd/*` of orch's processes, the drivers' spec files), and
//! asks each for a session on the host that leaves a mark. No mark is made, with the network
//! confined and open; and no master outlives the run.

use std::path::Path;
use std::time::Duration;

use crate::support::{Repo, sshd, toml_array, wait_within};

/// The attacker: waits until the remote plan's agent runs, then tries every socket it finds
/// (`$1`: the mark a session on the host makes, `$2`: the host's `dir`, `$3`: the state
/// directory); writes what it tried to `attack.log` and `done` at the end.
const ATTACKER: &str = r#"mark=$1; hostdir=$2; state=$3
log=attack.log
i=0
while [ $i -lt 600 ]; do
  if find "$hostdir" -name remote-started 2>/dev/null | grep -q .; then break; fi
  sleep 0.05; i=$((i+1))
done
echo "remote seen after $i" >> $log
cands=$(
  {
    awk 'NR > 1 && $8 != "" { print $8 }' /proc/net/unix 2>/dev/null
    for f in /proc/[0-9]*/cmdline; do
      tr '\0' '\n' < "$f" 2>/dev/null | sed -n 's/^ControlPath=//p; s/^-S//p'
    done
    find "$state" /tmp /run /dev/shm -maxdepth 6 -type s 2>/dev/null
    for d in /proc/[0-9]*/fd/*; do [ -d "$d" ] && ls -d "$d"/* 2>/dev/null; done
    cat "$state"/remote/*/*.json 2>/dev/null | tr ',' '\n' | sed -n 's/.*"control":"\([^"]*\)".*/\1/p'
    for p in /tmp/orch-* /run/user/*/orch; do ls -d "$p"/* "$p"/*/* 2>/dev/null; done
  } | sed 's/\.[A-Za-z0-9]\{16\}$//' | sort -u
)
n=0
root=${state%/.orch/state}
for c in $cands; do
  # Other tests' repositories (run by other builds beside this one) are not this run's.
  case "$c" in /tmp/.tmp*) case "$c" in "$root"*) ;; *) continue ;; esac ;; esac
  for s in "$c" "$c"/*; do
    case "$s" in *'*') continue ;; esac
    [ $n -lt 400 ] || break
    n=$((n+1))
    echo "try $s" >> $log
    # Each try bounded: a socket that is not ssh's (dockerd's API) never answers its mux hello.
    if timeout 3 /usr/bin/ssh -F /dev/null -o ControlMaster=no -o ControlPath="$s" \
        -o ProxyCommand=/bin/false -o BatchMode=yes -o ConnectTimeout=2 \
        orch-hijack "touch '$mark'" </dev/null >/dev/null 2>&1; then
      echo "HIJACKED through $s" >> $log
    fi
  done
done
echo "tried $n" >> $log
# The directory behind the mount that hides it, opened by its inode (`open_by_handle_at`, which
# needs CAP_DAC_READ_SEARCH: a root agent that kept its capabilities had it).
grep CapEff /proc/self/status >> $log
python3 - "$mark" >> $log 2>&1 <<'PY'
import ctypes, os, struct, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
uid = os.geteuid()
for parent, name in (("/tmp", "orch-%d" % uid), ("/run/user/%d" % uid, "orch")):
    try:
        ino = next(d.inode() for d in os.scandir(parent) if d.name == name)
    except Exception:
        continue
    root = os.open("/", os.O_RDONLY)
    for kind in (1, 2):
        handle = ctypes.create_string_buffer(struct.pack("<IiII", 8, kind, ino & 0xffffffff, 0), 16)
        fd = libc.open_by_handle_at(root, handle, os.O_RDONLY | os.O_DIRECTORY)
        if fd < 0:
            print("open_by_handle_at", parent, kind, "errno", ctypes.get_errno())
            continue
        for d in os.listdir("/proc/self/fd/%d" % fd):
            try:
                names = os.listdir("/proc/self/fd/%d/%s" % (fd, d))
            except Exception:
                continue
            for s in names:
                p = "/proc/%d/fd/%d/%s/%s" % (os.getpid(), fd, d, s)
                r = subprocess.run(["/usr/bin/ssh", "-F", "/dev/null", "-o", "ControlMaster=no",
                    "-o", "ControlPath=" + p, "-o", "ProxyCommand=/bin/false", "-o", "BatchMode=yes",
                    "orch-hijack", "touch '%s'" % sys.argv[1]], stdin=subprocess.DEVNULL,
                    capture_output=True, pass_fds=(fd,))
                print("try", p)
                if r.returncode == 0:
                    print("HIJACKED through", p)
PY
echo done > done
"#;

/// The remote plan's agent: says it runs (a file in its worktree on the host), then waits for the
/// attacker to finish (its `done`, `$1`), and does its task.
const REMOTE: &str = r#"touch remote-started
i=0
while [ ! -e "$1" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
echo ok > r.txt
"#;

/// The processes whose command line goes through `/proc/<pid>/fd/` of process `pid`.
fn masters_of(pid: u32) -> Vec<String> {
    let needle = format!("/proc/{pid}/fd/");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) && cmd.contains("ssh") {
            out.push(cmd);
        }
    }
    out
}

#[test]
fn a_confined_agent_cannot_reach_the_hosts_through_orchs_shared_connections() {
    if !sshd::available() || !crate::support::landlock() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let host_dir = lab.server("h1").dir.clone();
    for network in ["confined", "open"] {
        let repo = Repo::builder()
            .identity_in_config()
            .timeout(Duration::from_secs(120))
            .build();
        let mark = repo.outside(&format!("mark-{network}"));
        let attacker = repo.outside("attacker.sh");
        let remote = repo.outside("remote.sh");
        std::fs::write(&attacker, ATTACKER).expect("attacker");
        std::fs::write(&remote, REMOTE).expect("remote");
        let state = repo.root().join(".orch/state");
        let done = repo.worktree("local").join("done");
        let local_cmd = toml_array(&[
            "sh".to_string(),
            attacker.display().to_string(),
            mark.display().to_string(),
            host_dir.display().to_string(),
            state.display().to_string(),
        ]);
        let remote_cmd = toml_array(&[
            "sh".to_string(),
            remote.display().to_string(),
            done.display().to_string(),
        ]);
        repo.write(
            "plans.toml",
            &format!(
                "{}[defaults]\nmax_agents = 4\nretries = 0\nsandbox = \"on\"\n\n\
                 [agents.attacker]\ncommand = {local_cmd}\nreport = \"exit\"\nnetwork = \"{network}\"\n\n\
                 [agents.remote]\ncommand = {remote_cmd}\nreport = \"exit\"\nnetwork = \"open\"\n\n\
                 [[plan]]\nname = \"local\"\nfile = \"docs/plans/local.md\"\nagent = \"attacker\"\n\n\
                 [[plan]]\nname = \"far\"\nfile = \"docs/plans/far.md\"\nagent = \"remote\"\nexecutor = \"ssh\"\nhosts = [\"h1\"]\n",
                lab.host_toml(2)
            ),
        );
        for p in ["local", "far"] {
            repo.write(
                &format!("docs/plans/{p}.md"),
                "# P\n\n## Phase 1: Work\n- [ ] 1.1 work\n",
            );
        }
        repo.commit_all("plans");
        let mut cmd = repo.orch(&["up"]);
        cmd.env("PATH", lab.path());
        let child = cmd.spawn().expect("orch up");
        let pid = child.id();
        let out = wait_within(child, repo.timeout(), "orch up");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let log = std::fs::read_to_string(repo.worktree("local").join("attack.log"))
            .unwrap_or_else(|_| {
                String::from_utf8_lossy(&repo.git_out(&["show", "plan/local:attack.log"]).stdout)
                    .into_owned()
            });
        assert!(
            !mark.exists(),
            "network {network}: the agent ran a command on the host through orch's connection:\n{log}\n{err}"
        );
        assert!(!log.contains("HIJACKED"), "network {network}: {log}");
        // The attack ran while the remote agent did, and had sockets to try.
        assert!(
            log.contains("remote seen after"),
            "network {network}: {log}\n{err}"
        );
        let tried: usize = log
            .lines()
            .find_map(|l| l.strip_prefix("tried "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        assert!(tried > 0, "network {network}: nothing was tried: {log}");
        // No capability (root's included) survives into a confined agent.
        assert!(
            log.contains("CapEff:\t0000000000000000"),
            "network {network}: the agent kept capabilities: {log}"
        );
        // Both plans did their work: the run was a real one.
        assert_eq!(out.status.code(), Some(0), "network {network}: {err}");
        assert!(
            repo.tree_files("plan/far").contains(&"r.txt".to_string()),
            "network {network}: {err}"
        );
        // No shared connection outlives the run that made it.
        let left = masters_of(pid);
        assert!(left.is_empty(), "network {network}: left running: {left:?}");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "orch up still runs"
        );
    }
}

/// `orch up` killed with SIGKILL while a plan runs on a host: the shared connection it kept
/// (its `ssh -M` master) ends with it, at once, rather than stay open for the next process to
/// find; its control directory is gone after the next run.
#[test]
fn the_shared_connection_ends_with_a_killed_orch_up() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let host_dir = lab.server("h1").dir.clone();
    let repo = Repo::builder()
        .identity_in_config()
        .timeout(Duration::from_secs(120))
        .build();
    let remote = repo.outside("remote.sh");
    std::fs::write(&remote, REMOTE).expect("remote");
    let release = repo.outside("release");
    let remote_cmd = toml_array(&[
        "sh".to_string(),
        remote.display().to_string(),
        release.display().to_string(),
    ]);
    repo.write(
        "plans.toml",
        &format!(
            "{}[defaults]\nretries = 0\nagent = \"remote\"\nexecutor = \"ssh\"\n\n\
             [agents.remote]\ncommand = {remote_cmd}\nreport = \"exit\"\nnetwork = \"open\"\n\n\
             [[plan]]\nname = \"far\"\nfile = \"docs/plans/far.md\"\nhosts = [\"h1\"]\n",
            lab.host_toml(2)
        ),
    );
    repo.write(
        "docs/plans/far.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 work\n",
    );
    repo.commit_all("plans");
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let mut child = cmd.spawn().expect("orch up");
    let pid = child.id();
    let started = std::time::Instant::now();
    let running = || {
        walk(&host_dir)
            .iter()
            .any(|p| p.ends_with("remote-started"))
    };
    while !running() {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the remote agent never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let masters = || -> Vec<String> {
        masters_of(pid)
            .into_iter()
            .filter(|c| c.contains("ControlMaster=yes"))
            .collect()
    };
    // The run's master was up while it ran.
    assert!(!masters().is_empty(), "no master while the plan ran");
    // The run's control directory in orch's private directory (`ssh-<random>`), held open.
    let control = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("orch up's descriptors")
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("ssh-") && !n.ends_with(".lock"))
                && p.is_dir()
        })
        .expect("orch up holds its control directory");
    child.kill().expect("kill -9");
    let _ = child.wait();
    let killed = std::time::Instant::now();
    while !masters().is_empty() {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the master outlived orch up: {:?}",
            masters()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the agent finish; the next `orch up` takes the run over and ends it.
    std::fs::write(&release, b"").expect("release");
    let mut again = repo.orch(&["up"]);
    again.env("PATH", lab.path());
    let out = wait_within(again.spawn().expect("orch up"), repo.timeout(), "orch up");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(repo.tree_files("plan/far").contains(&"r.txt".to_string()));
    // The killed run's directory, and its lock file, are gone after the next run (which sweeps
    // what no live process holds).
    assert!(
        !control.exists(),
        "the killed run's control directory {} outlived the next run",
        control.display()
    );
    let mut lock = control.into_os_string();
    lock.push(".lock");
    assert!(!std::path::Path::new(&lock).exists(), "{lock:?} is left");
}

/// Every path below `dir` (links not followed).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}
