//! What the end-to-end benchmarks share: git with a fixed identity in a temp repository, and the
//! clock rate of `/proc` CPU times.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs git in `dir` with the benchmark's identity; panics when it fails.
#[allow(dead_code)] // Used by the benches that build repositories, not by every one.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@localhost")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@localhost")
        .stdout(Stdio::null())
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// Clock ticks per second (`USER_HZ`, 100 on Linux) of `/proc/<pid>/stat` times, as `getconf`
/// reports them.
#[allow(dead_code)] // Used by the benches that read CPU times, not by every one.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0)
}

/// Whether this is a benchmark run: `cargo bench` passes `--bench`. Every bench is also built
/// and run by `cargo test` (`test = true` in `Cargo.toml`), which does not: then it runs a tiny
/// size in a few seconds and checks its figures are sane, so the bench cannot rot.
#[allow(dead_code)] // Used by the benches that follow the convention, not by `up` yet.
pub fn full_size() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Runs git in `dir` with the benchmark's identity and returns its standard output, trimmed;
/// panics when it fails.
#[allow(dead_code)] // Used by the benches that check commits, not by every one.
pub fn git_output(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// CPU seconds of a process that has exited: its own (utime + stime, every thread) and that of
/// the descendants it waited for (cutime + cstime).
#[allow(dead_code)] // Used by the benches that read CPU times, not by every one.
pub struct ExitCpu {
    pub own: f64,
    pub children: f64,
}

/// Waits for `child` to exit without reaping it (`waitid(…, WEXITED | WNOWAIT)`), reads its
/// final CPU times from the zombie's `/proc/<pid>/stat` (fields 14–17), then reaps it. Returns
/// the CPU times and the exit status.
#[allow(dead_code)] // Used by the benches that read CPU times, not by every one.
pub fn wait_with_cpu(child: &mut std::process::Child) -> (ExitCpu, std::process::ExitStatus) {
    use nix::sys::wait::{Id, WaitPidFlag, waitid};
    let pid = child.id();
    waitid(
        Id::Pid(nix::unistd::Pid::from_raw(pid as i32)),
        WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
    )
    .expect("waitid");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat of the zombie");
    // The command name may hold spaces: fields are counted after its closing parenthesis
    // (field 3, the state, is the first one after it).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<f64> = rest
        .split_whitespace()
        .take(15)
        .skip(11)
        .map(|v| v.parse().expect("tick count"))
        .collect();
    let hz = clock_ticks();
    let cpu = ExitCpu {
        own: (f[0] + f[1]) / hz,
        children: (f[2] + f[3]) / hz,
    };
    let status = child.wait().expect("reap the child");
    (cpu, status)
}

/// User + system CPU seconds of every child of this process reaped so far
/// (`getrusage(RUSAGE_CHILDREN)`, which includes the descendants they waited for).
#[allow(dead_code)] // Used by the benches that read CPU times, not by every one.
pub fn children_rusage() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage");
    let s = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    s(u.user_time()) + s(u.system_time())
}

/// The top-level components of a generated repository ([`big_repo`]): `services/s00`..`s09` and
/// `libs/l00`..`l09`, each holding the same share of the files, so one component is 5% of them.
#[allow(dead_code)] // Used by the benches of checkouts, not by every one.
pub const COMPONENTS: usize = 20;

/// The path of component `c` (0..[`COMPONENTS`]) in a generated repository.
#[allow(dead_code)]
pub fn component(c: usize) -> String {
    if c < COMPONENTS / 2 {
        format!("services/s{c:02}")
    } else {
        format!("libs/l{:02}", c - COMPONENTS / 2)
    }
}

/// Makes `dir` (created, or empty) a git repository of a realistic size: `files` source files of
/// about 4 KiB each (40,000 files are about 160 MB checked out) spread over [`COMPONENTS`]
/// components in directories of 100 files, a few files at the root (`README.md`, `Cargo.toml`,
/// `.gitignore` ignoring `target/` and `node_modules/`), all in one commit on `main`. The content
/// is the same for the same `files`, so runs compare.
///
/// Anyone can re-run a checkout benchmark on such a repository: the benches that use it print
/// its size.
#[allow(dead_code)]
pub fn big_repo(dir: &Path, files: usize) {
    use std::fmt::Write as _;
    std::fs::create_dir_all(dir).expect("repository directory");
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(
        dir.join("README.md"),
        "# generated\n\nA generated repository.\n",
    )
    .expect("write");
    std::fs::write(dir.join(".gitignore"), "target/\nnode_modules/\n").expect("write");
    std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = []\n").expect("write");
    let per_component = files.div_ceil(COMPONENTS);
    let mut body = String::with_capacity(4200);
    for i in 0..files {
        let c = i / per_component;
        let j = i % per_component;
        let sub = dir.join(component(c)).join(format!("m{:03}", j / 100));
        if j.is_multiple_of(100) {
            std::fs::create_dir_all(&sub).expect("component directory");
        }
        body.clear();
        let _ = writeln!(body, "//! Module {j} of component {c}.\n");
        let mut line = 0;
        while body.len() < 4000 {
            let _ = writeln!(
                body,
                "pub fn f{line}_{i}(x: u64) -> u64 {{ x.wrapping_mul({}).rotate_left({}) }}",
                i * 31 + line + 1,
                line % 64
            );
            line += 1;
        }
        std::fs::write(sub.join(format!("f{:02}.rs", j % 100)), &body).expect("write");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "generated"]);
}

/// The median of `v` (sorted in place).
#[allow(dead_code)] // Used by the benches that time runs of f64 seconds.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A directory for a bench's repositories, its name starting with `prefix`: under `/dev/shm`
/// when it exists (tmpfs: this machine's ext4 slows down for minutes after many files are
/// deleted), else the temp dir.
#[allow(dead_code)] // Used by the benches that check out large repositories.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(shm)
            .expect("tempdir")
    } else {
        tempfile::tempdir().expect("tempdir")
    }
}
