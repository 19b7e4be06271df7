//! Real OpenSSH servers on loopback standing for the `[[host]]` machines of `executor = "ssh"`:
//! one `sshd` per host on 127.0.0.1 only, on a port of its own, with a host key and a client
//! key made for the test, each host with its own `dir`. The client side is the user's `ssh`
//! from PATH, unchanged: `ssh` reads its configuration from the user's home in the password
//! database (not `$HOME`), so the test puts first on PATH a directory whose `ssh` runs the real
//! one with `-F` the test's configuration (host aliases, the key, the known host keys).
//!
//! Without `sshd` (Debian's `openssh-server`) the tests that need it say so and pass, unless
//! `ORCH_REQUIRE_SSHD=1` (CI sets it) makes them fail.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that makes a missing `sshd` a failure.
pub const REQUIRE_SSHD: &str = "ORCH_REQUIRE_SSHD";

const SSHD: &str = "/usr/sbin/sshd";
const SSH: &str = "/usr/bin/ssh";

/// One server standing for one host.
pub struct Server {
    pub name: String,
    pub port: u16,
    /// The host's `dir` (orch's cache and worktrees there).
    pub dir: PathBuf,
    child: Option<Child>,
}

/// The servers, the client's configuration and the `ssh` on PATH that uses it.
pub struct Lab {
    pub tmp: tempfile::TempDir,
    pub servers: Vec<Server>,
    /// A directory to put first on PATH.
    pub bin: PathBuf,
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("addr").port()
}

/// Whether the tests can run `sshd`; `None` means skip (said on stderr); a missing `sshd` with
/// `ORCH_REQUIRE_SSHD=1` fails.
pub fn available() -> bool {
    let here = Path::new(SSHD).exists() && Path::new(SSH).exists();
    if !here {
        assert!(
            std::env::var(REQUIRE_SSHD).map_or(true, |v| v.is_empty() || v == "0"),
            "{REQUIRE_SSHD} is set, but {SSHD} or {SSH} is missing: apt-get install openssh-server openssh-client"
        );
        eprintln!("skipped: no {SSHD} (apt-get install openssh-server)");
    }
    here
}

/// A directory of links to every program of `/usr/bin` and `/bin` but git's: a host's `PATH`
/// without git.
pub fn path_without_git(dir: &Path) -> PathBuf {
    let tools = dir.join("no-git-bin");
    std::fs::create_dir_all(&tools).expect("tools");
    for from in ["/usr/bin", "/bin"] {
        for e in std::fs::read_dir(from).into_iter().flatten().flatten() {
            let name = e.file_name();
            if name.to_string_lossy().starts_with("git") {
                continue;
            }
            let _ = std::os::unix::fs::symlink(e.path(), tools.join(&name));
        }
    }
    tools
}

impl Lab {
    /// One server per name, each answering before this returns.
    pub fn start(names: &[&str]) -> Self {
        Self::start_full(names, &[], "")
    }

    /// [`Self::start`], each `(name, "VAR=value")` of `set_env` set by that host's `sshd` in
    /// the environment of every session it opens (`SetEnv`): what the host's side sees.
    pub fn start_with_env(names: &[&str], set_env: &[(&str, &str)]) -> Self {
        Self::start_full(names, set_env, "")
    }

    /// [`Self::start`] with `extra` lines in each server's `sshd_config` (a `SetEnv PATH=…`
    /// giving the host's sessions programs of the test's own).
    pub fn start_with(names: &[&str], extra: &str) -> Self {
        Self::start_full(names, &[], extra)
    }

    /// [`Self::start_with_env`] and [`Self::start_with`] at once.
    fn start_full(names: &[&str], set_env: &[(&str, &str)], extra: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tmp");
        let t = tmp.path();
        // sshd's privilege separation directory (as root).
        let _ = std::fs::create_dir_all("/run/sshd");
        let user = String::from_utf8(Command::new("id").arg("-un").output().expect("id").stdout)
            .expect("utf-8")
            .trim()
            .to_string();
        run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(t.join("host_key")),
            "ssh-keygen (host)",
        );
        run(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(t.join("id")),
            "ssh-keygen (client)",
        );
        std::fs::copy(t.join("id.pub"), t.join("authorized_keys")).expect("authorized_keys");
        let host_pub = std::fs::read_to_string(t.join("host_key.pub")).expect("host key");
        let bin = t.join("bin");
        std::fs::create_dir_all(&bin).expect("bin");
        let mut config = String::new();
        let mut known = String::new();
        let mut servers = Vec::new();
        for name in names {
            let port = free_port();
            let dir = t.join(name).join("dir");
            // The host user's HOME, of the lab's own (unless the test sets its own `SetEnv`): a
            // fresh home, as a host's user may have, and none of this machine's shell start-up
            // (its `~/.bashrc`, which bash reads for every command sshd runs, starts a Python
            // version manager: a hundred processes for each command orch runs on the host).
            // sshd takes the first `SetEnv` only: the host's variables go on the same line.
            let home = t.join(name).join("home");
            std::fs::create_dir_all(&home).expect("host home");
            let mut vars: Vec<String> = set_env
                .iter()
                .filter(|(h, _)| h == name)
                .map(|(_, v)| (*v).to_string())
                .collect();
            if !vars.iter().any(|v| v.starts_with("HOME=")) {
                vars.insert(0, format!("HOME={}", home.display()));
            }
            // A test's own `SetEnv` line (in `extra`) gets the HOME unless it sets one.
            let (env, extra) = if extra.contains("SetEnv ") {
                let extra = if extra.contains("HOME=") {
                    extra.to_string()
                } else {
                    extra.replacen("SetEnv ", &format!("SetEnv HOME={} ", home.display()), 1)
                };
                (String::new(), extra)
            } else {
                (format!("SetEnv {}\n", vars.join(" ")), extra.to_string())
            };
            let conf = t.join(name).join("sshd_config");
            std::fs::write(
                &conf,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nPidFile {pid}\n\
                     AuthorizedKeysFile {ak}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
                     AllowUsers {user}\nLogLevel INFO\nMaxSessions 50\nMaxStartups 50\n{env}{extra}\n",
                    hk = t.join("host_key").display(),
                    pid = t.join(name).join("sshd.pid").display(),
                    ak = t.join("authorized_keys").display(),
                ),
            )
            .expect("sshd_config");
            let child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(t.join(name).join("sshd.log")).expect("log"))
                .spawn()
                .expect("spawn sshd");
            config.push_str(&format!(
                "Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  HostKeyAlias orch-test-host\n\n"
            ));
            known.push_str(&format!("[127.0.0.1]:{port} {host_pub}"));
            servers.push(Server {
                name: (*name).to_string(),
                port,
                dir,
                child: Some(child),
            });
        }
        known.push_str(&format!("orch-test-host {host_pub}"));
        config.push_str(&format!(
            "Host *\n  User {user}\n  IdentityFile {id}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  \
             GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
            id = t.join("id").display(),
            kh = t.join("known_hosts").display(),
        ));
        std::fs::write(t.join("known_hosts"), known).expect("known_hosts");
        std::fs::write(t.join("ssh_config"), config).expect("ssh_config");
        let wrapper = bin.join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec {SSH} -F '{}' \"$@\"\n",
                t.join("ssh_config").display()
            ),
        )
        .expect("ssh wrapper");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let lab = Self { tmp, servers, bin };
        for s in &lab.servers {
            lab.wait_answers(&s.name);
        }
        lab
    }

    /// PATH with the test's `ssh` first.
    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// Polls `ssh NAME true` until it succeeds (30 s).
    fn wait_answers(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new(self.bin.join("ssh"))
                .args([name, "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sshd for {name} does not answer: {}",
                std::fs::read_to_string(self.tmp.path().join(name).join("sshd.log"))
                    .unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// How many connections the server of `name` accepted (its log's `Accepted publickey` lines;
    /// [`Self::start`] made one to see it answer).
    pub fn accepted(&self, name: &str) -> usize {
        std::fs::read_to_string(self.tmp.path().join(name).join("sshd.log"))
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    }

    /// The server of `name`.
    pub fn server(&self, name: &str) -> &Server {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .expect("server")
    }

    /// `[[host]]` tables for every server: `ssh` its alias, `dir` its own.
    pub fn host_toml(&self, slots: usize) -> String {
        self.servers
            .iter()
            .map(|s| {
                format!(
                    "[[host]]\nname = \"{n}\"\nssh = \"{n}\"\nslots = {slots}\ndir = \"{d}\"\n\n",
                    n = s.name,
                    d = s.dir.display()
                )
            })
            .collect()
    }

    /// Cuts every connection of the server of `name` (kills its session processes, not what
    /// they started, nor its listener): the network between orch and the host fails for a
    /// moment, and the host comes back with what ran there.
    pub fn cut_connections(&mut self, name: &str) {
        let Some(root) = self
            .servers
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.child.as_ref())
            .map(Child::id)
        else {
            return;
        };
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.split(' ').nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(root) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }

    /// The server of `name` goes away as in a network blip: its listener and every connection
    /// end at once (the listener is stopped first, so that no connection starts meanwhile), what
    /// runs there goes on. [`Self::restart`] brings it back.
    pub fn go_down(&mut self, name: &str) {
        let Some(root) = self
            .servers
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.child.as_ref())
            .map(Child::id)
        else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-STOP", &root.to_string()])
            .status();
        self.cut_connections(name);
        self.stop(name);
    }

    /// The network to the server of `name` stalls: its listener and the `sshd` processes of its
    /// connections are stopped (nothing passes either way, no connection is reset), what runs
    /// there goes on. Ended by [`Self::end_stall`].
    pub fn stall(&mut self, name: &str) {
        for pid in self.sshd_tree(name) {
            let _ = Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .status();
        }
    }

    /// The end of [`Self::stall`]: the stalled connections are reset (their `sshd` processes
    /// killed, what runs there goes on) and the server answers again (a fresh listener) before
    /// this returns.
    pub fn end_stall(&mut self, name: &str) {
        for pid in self.sshd_tree(name).into_iter().skip(1) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        self.stop(name);
        self.restart(name);
    }

    /// The listener of `name` (stopped first: it starts no connection meanwhile), then the
    /// `sshd` processes below it, parents before children.
    fn sshd_tree(&self, name: &str) -> Vec<u32> {
        let Some(root) = self
            .servers
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.child.as_ref())
            .map(Child::id)
        else {
            return Vec::new();
        };
        let _ = Command::new("kill")
            .args(["-STOP", &root.to_string()])
            .status();
        let mut all = vec![root];
        let mut i = 0;
        while i < all.len() {
            let parent = all[i];
            for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                    continue;
                };
                let ppid = stat
                    .rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                let is_sshd =
                    std::fs::read_link(e.path().join("exe")).is_ok_and(|x| x == Path::new(SSHD));
                if ppid == Some(parent) && is_sshd && !all.contains(&pid) {
                    all.push(pid);
                }
            }
            i += 1;
        }
        all
    }

    /// Kills the server of `name` and every process of its sessions (the host dies: its
    /// connections drop, what runs there ends).
    pub fn kill_host(&mut self, name: &str) {
        let Some(s) = self.servers.iter_mut().find(|s| s.name == name) else {
            return;
        };
        let Some(mut c) = s.child.take() else {
            return;
        };
        let root = c.id();
        // Every process of the tree is stopped first (so that none exits and has its children
        // reparented out of sight), found by their parents in /proc, then all are killed.
        let signal = |pid: u32, sig: &str| {
            let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
        };
        signal(root, "-STOP");
        let mut tree = vec![root];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut found = Vec::new();
            for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                    continue;
                };
                let ppid = stat
                    .rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid.is_some_and(|pp| tree.contains(&pp)) && !tree.contains(&pid) {
                    found.push(pid);
                }
            }
            if found.is_empty() {
                break;
            }
            for pid in &found {
                signal(*pid, "-STOP");
            }
            tree.extend(found);
            assert!(
                Instant::now() < deadline,
                "the processes of {name} do not end"
            );
        }
        for pid in &tree {
            signal(*pid, "-KILL");
        }
        let _ = c.wait();
    }

    /// Starts the server of `name` again after [`Self::stop`] (same port, same configuration,
    /// its log appended to), answering before this returns.
    pub fn restart(&mut self, name: &str) {
        let t = self.tmp.path().to_path_buf();
        let Some(s) = self.servers.iter_mut().find(|s| s.name == name) else {
            return;
        };
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(t.join(name).join("sshd.log"))
            .expect("log");
        s.child = Some(
            Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(t.join(name).join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sshd"),
        );
        self.wait_answers(name);
    }

    /// Stops the server of `name` (its listener; sessions it started end with their clients).
    pub fn stop(&mut self, name: &str) {
        if let Some(s) = self.servers.iter_mut().find(|s| s.name == name)
            && let Some(mut c) = s.child.take()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}
