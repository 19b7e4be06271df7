//! The cost of checking out a submodule in every worktree orch makes (docs/src/commands/up.md,
//! "Submodules": each submodule a linked worktree of `<common git dir>/modules/<name>`, detached
//! at the gitlink's commit, made by the git CLI), on a submodule of a realistic size.
//!
//! Workload: a superproject of a few files whose submodule `libs/big` is a repository from
//! `support::big_repo` (20,000 and 40,000 files of ~4 KiB, one commit), added with `git
//! submodule add` (so `.git/modules/libs/big` exists and the main work tree has it checked out),
//! the repository it came from then deleted and the submodule's URL in the superproject's config
//! pointed at an unreachable address, so any fetch would fail; all on `/dev/shm` (tmpfs, as
//! `benches/worktrees.rs`). Four plans per run, each `orch up` of one plan as a whole process,
//! then `orch clean PLAN --force`:
//! - one task (in the plan's worktree), with `submodules = true` (the default) and `false`;
//! - 8 independent tasks with `parallel_tasks = 2` (the pool's slots), with and without.
//!
//! The agent (`sh -c`, `report = "exit"`) checks that `libs/big/services/s00/m000/f00.rs` exists
//! (with submodules; that it does not, without) and writes `t.txt` (one task) or `<task>.txt`
//! (the pool's). Side by side: `git --git-dir .git/modules/libs/big worktree add --detach DIR
//! COMMIT` (the submodule's files alone, what orch has git do for each checkout) and its removal.
//! Three runs of each (`-- --runs N`), alternating (the order of on and off swapped every other
//! run), medians.
//!
//! Every run checks its outcome: `orch up` exits 0, one commit per task on the plan branch, each
//! with only its task's file, and the plan branch's tree has the gitlink `libs/big` (mode 160000)
//! at the submodule's commit; `git worktree add`'s checkout has the file.
//!
//! Run: `cargo bench --bench submodules` (`-- --sizes 40000` picks sizes; `ORCH_BENCH_BIN=PATH`
//! runs another build). Under `cargo test` (no `--bench`) it runs one tiny size (300 files, 2
//! pooled tasks) once and checks the outcome, so the bench cannot rot.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

mod support;
use support::{big_repo, full_size, git, git_output, median, scratch};

const ORCH: &str = env!("CARGO_BIN_EXE_orch");

/// A file of the submodule: `big_repo`'s first file, there at every size.
const PROBE: &str = "libs/big/services/s00/m000/f00.rs";

const UNREACHABLE: &str = "https://127.0.0.1:9/none.git";

/// One task in the plan's worktree, or `n` independent tasks in a pool of 2.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    One,
    Pool(usize),
}

impl Shape {
    fn tasks(self) -> usize {
        match self {
            Shape::One => 1,
            Shape::Pool(n) => n,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::Pool(_) => "pool",
        }
    }
}

fn plan_name(shape: Shape, on: bool, r: usize) -> String {
    format!("{}-{}-r{r}", shape.tag(), if on { "on" } else { "off" })
}

/// Makes the superproject at `dir` with its submodule `libs/big` of `files` generated files
/// (made at `source`, then deleted), its URL unreachable; returns the gitlink's commit.
fn superproject(dir: &Path, source: &Path, files: usize) -> String {
    big_repo(source, files);
    std::fs::create_dir_all(dir).expect("superproject directory");
    git(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join("README.md"), "# super\n\nA superproject.\n").expect("write");
    std::fs::write(dir.join(".gitignore"), ".orch/\n").expect("write");
    std::fs::write(dir.join("Makefile"), "all:\n\ttrue\n").expect("write");
    git(
        dir,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "add",
            "-q",
            source.to_str().expect("utf-8"),
            "libs/big",
        ],
    );
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "superproject with libs/big"]);
    assert!(
        dir.join(".git/modules/libs/big").is_dir(),
        "git submodule add made .git/modules/libs/big"
    );
    assert!(dir.join(PROBE).is_file(), "libs/big is checked out");
    // Any fetch from now on fails: the source is gone, the URL leads nowhere.
    std::fs::remove_dir_all(source).expect("remove the submodule's source");
    git(dir, &["config", "submodule.libs/big.url", UNREACHABLE]);
    let line = git_output(dir, &["ls-tree", "HEAD", "libs/big"]);
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.first(), Some(&"160000"), "{line}");
    f.get(2).expect("gitlink commit").to_string()
}

/// Adds the manifest and, for each run, the four plans ([`plan_name`]) to the superproject,
/// committed.
fn add_plans(dir: &Path, pool: usize, runs: usize) {
    std::fs::create_dir_all(dir.join("plans")).expect("mkdir");
    let mut manifest = String::from("[defaults]\nmax_agents = 4\nretries = 0\n");
    // Agents `on-t`, `on-id`, `off-t`, `off-id`: the probe there (or not), then `t.txt` or
    // `<task>.txt`.
    for (mode, test) in [("on", "test -f"), ("off", "test ! -e")] {
        for (kind, file) in [("t", "t.txt"), ("id", "$ORCH_TASK.txt")] {
            manifest.push_str(&format!(
                "\n[agents.{mode}-{kind}]\ncommand = [\"sh\", \"-c\", \
                 \"{test} {PROBE} && echo $ORCH_TASK > {file}\"]\nreport = \"exit\"\n"
            ));
        }
    }
    for r in 0..runs {
        for shape in [Shape::One, Shape::Pool(pool)] {
            for on in [true, false] {
                let name = plan_name(shape, on, r);
                let mut plan = format!("# {name}\n\n## Phase 1: Work\n");
                for t in 1..=shape.tasks() {
                    plan.push_str(&format!("- [ ] 1.{t} Task {t}\n"));
                }
                std::fs::write(dir.join(format!("plans/{name}.md")), plan).expect("write plan");
                let (mode, kind, parallel) = match shape {
                    Shape::One => (if on { "on" } else { "off" }, "t", 1),
                    Shape::Pool(_) => (if on { "on" } else { "off" }, "id", 2),
                };
                manifest.push_str(&format!(
                    "\n[[plan]]\nname = \"{name}\"\nfile = \"plans/{name}.md\"\n\
                     agent = \"{mode}-{kind}\"\nparallel_tasks = {parallel}\nsubmodules = {on}\n"
                ));
            }
        }
    }
    std::fs::write(dir.join("plans.toml"), manifest).expect("write manifest");
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "plans"]);
}

fn orch(dir: &Path, args: &[&str]) -> std::process::Output {
    // `ORCH_BENCH_BIN=/path/to/orch` measures another build (e.g. the one before a change).
    let bin = std::env::var_os("ORCH_BENCH_BIN").unwrap_or_else(|| ORCH.into());
    let out = Command::new(bin)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("orch");
    assert!(
        out.status.success(),
        "orch {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `orch up` of the plan of `shape` with submodules `on` or not (run `r`), checks it, then
/// `orch clean --force`s it; returns the wall times of both.
fn run_plan(dir: &Path, shape: Shape, on: bool, r: usize, sub_commit: &str) -> (f64, f64) {
    let plan = plan_name(shape, on, r);
    let start = Instant::now();
    orch(dir, &["up", &plan]);
    let up = start.elapsed().as_secs_f64();
    let branch = format!("plan/{plan}");
    let range = format!("main..{branch}");
    let n = shape.tasks();
    assert_eq!(
        git_output(dir, &["rev-list", "--count", &range]),
        n.to_string(),
        "one commit per task of {plan}"
    );
    // Each commit holds only its task's file (the gitlink did not move).
    let log = git_output(dir, &["log", "--format=@%s", "--name-only", &range]);
    let mut commits: Vec<(String, Vec<String>)> = Vec::new();
    for line in log.lines().filter(|l| !l.is_empty()) {
        match line.strip_prefix('@') {
            Some(subject) => commits.push((subject.to_string(), Vec::new())),
            None => commits
                .last_mut()
                .expect("a commit")
                .1
                .push(line.to_string()),
        }
    }
    assert_eq!(commits.len(), n, "{log}");
    for (subject, files) in &commits {
        let want = match shape {
            Shape::One => "t.txt".to_string(),
            Shape::Pool(_) => {
                let id = subject
                    .strip_prefix(&format!("{plan} "))
                    .and_then(|s| s.split(':').next())
                    .expect("task subject");
                format!("{id}.txt")
            }
        };
        assert_eq!(files, &[want], "{subject}");
    }
    // The gitlink in the plan branch's tree, at the submodule's commit.
    let line = git_output(dir, &["ls-tree", &branch, "libs/big"]);
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        (f.first().copied(), f.get(2).copied()),
        (Some("160000"), Some(sub_commit)),
        "the gitlink in {branch}: {line}"
    );
    let start = Instant::now();
    orch(dir, &["clean", &plan, "--force"]);
    let clean = start.elapsed().as_secs_f64();
    assert!(
        !dir.join(".orch/worktrees").join(&plan).exists(),
        "orch clean removed {plan}'s worktree"
    );
    (up, clean)
}

/// `git worktree add` of the submodule's files alone, from its modules dir (and the removal),
/// timed: (add, remove).
fn worktree_add(dir: &Path, sub_commit: &str) -> (f64, f64) {
    let gitdir = dir.join(".git/modules/libs/big");
    let gitdir = gitdir.to_str().expect("utf-8");
    let path = dir.join(".orch/bench-add");
    let path_s = path.to_str().expect("utf-8");
    let start = Instant::now();
    git(
        dir,
        &[
            "--git-dir",
            gitdir,
            "worktree",
            "add",
            "-q",
            "--detach",
            path_s,
            sub_commit,
        ],
    );
    let add = start.elapsed().as_secs_f64();
    assert!(
        path.join(PROBE.trim_start_matches("libs/big/")).is_file(),
        "git worktree add checked out the submodule's files"
    );
    let start = Instant::now();
    git(
        dir,
        &["--git-dir", gitdir, "worktree", "remove", "--force", path_s],
    );
    (add, start.elapsed().as_secs_f64())
}

fn main() {
    let full = full_size();
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = match args.iter().position(|a| a == "--sizes") {
        Some(i) => args
            .get(i + 1)
            .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
            .unwrap_or_default(),
        None if full => vec![20_000, 40_000],
        None => vec![300],
    };
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(3),
        None if full => 3,
        None => 1,
    };
    let pool = if full { 8 } else { 2 };
    println!(
        "submodule libs/big checked out in every worktree: `orch up` of one task, and of {pool} \
         independent tasks with parallel_tasks = 2, with submodules = true and false; \
         {runs} run(s) of each, alternating (medians, wall seconds)"
    );
    println!(
        "{:>7}  {:<34} {:>10} {:>10} {:>10}",
        "files", "what", "on", "off", "on - off"
    );
    for files in sizes {
        let tmp = scratch("orch-submodules-");
        let dir = tmp.path().join("super");
        let start = Instant::now();
        let sub_commit = superproject(&dir, &tmp.path().join("big"), files);
        add_plans(&dir, pool, runs);
        let made = start.elapsed().as_secs_f64();
        // (up on, up off, clean on, clean off) per shape; git worktree add and remove.
        let mut one: [Vec<f64>; 4] = Default::default();
        let mut pooled: [Vec<f64>; 4] = Default::default();
        let (mut adds, mut removes) = (Vec::new(), Vec::new());
        for r in 0..runs {
            // The order of on and off swapped every other run.
            let order = if r % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for (shape, times) in [(Shape::One, &mut one), (Shape::Pool(pool), &mut pooled)] {
                for on in order {
                    let (up, clean) = run_plan(&dir, shape, on, r, &sub_commit);
                    let k = usize::from(!on);
                    times[k].push(up);
                    times[2 + k].push(clean);
                }
            }
            let (add, remove) = worktree_add(&dir, &sub_commit);
            adds.push(add);
            removes.push(remove);
        }
        let m = |v: &mut [Vec<f64>; 4]| v.each_mut().map(|t| median(t));
        let (one, pooled) = (m(&mut one), m(&mut pooled));
        let (add, remove) = (median(&mut adds), median(&mut removes));
        let row = |what: &str, on: f64, off: f64| {
            println!(
                "{files:>7}  {what:<34} {on:>10.2} {off:>10.2} {:>10.2}",
                on - off
            );
        };
        row("orch up, one task", one[0], one[1]);
        row(
            &format!("orch up, {pool} tasks, pool of 2"),
            pooled[0],
            pooled[1],
        );
        row("orch clean --force, one task", one[2], one[3]);
        row(
            &format!("orch clean --force, {pool} tasks"),
            pooled[2],
            pooled[3],
        );
        println!(
            "{files:>7}  git worktree add of libs/big alone: {add:.2} s (remove {remove:.2} s); \
             pool's difference beyond the one task's: {:.2} s (superproject made in {made:.1} s)",
            (pooled[0] - pooled[1]) - (one[0] - one[1])
        );
    }
}
