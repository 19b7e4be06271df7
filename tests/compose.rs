//! The composition suite: every capability with every other. A pairwise (all-pairs) covering
//! set over eight settings a team lead combines:
//!
//! | setting | values |
//! |---|---|
//! | executor | `local`, `ssh` (a `[[host]]`: a real `sshd` on loopback), `slurm` (a real cluster), `container` (real podman, image `localhost/orch-test-base`) |
//! | repository | `home` (the plan in the repository of plans.toml), `other` (a `[[repo]]`) |
//! | report | `orch` (the agent calls `orch task done`), `exit` (its exit status) |
//! | sandbox | `on`, `off` |
//! | network | `confined`, `none`, `open` |
//! | attempts | `n1`, `n2` (best of 2) |
//! | mode | `task`, `plan` (one agent for the whole plan) |
//! | landing | `train` (`auto_merge`), `merge` (`orch merge` after `orch up`) |
//!
//! Each cell is one `#[test]` named by its values: a real `orch up` of one plan of two tiny tasks
//! run by `tests/fixtures/agents/compose_agent.sh`, then its landing, in real repositories. A
//! cell checks what a user checks: each task `completed` with its commit, those commits on the
//! plan branch of the plan's own repository (none in the other), and the landing on that
//! repository's target: the file the tasks wrote (each line saying what the sandbox and the
//! network let the agent do: a write outside its worktree, a connection to a loopback port of
//! the test), the merge commit, the plan's `orchMerge` record.
//!
//! In a container only the plan's worktree and orch's own directories are mounted, not this
//! fixture: a container cell passes the script inline (`sh -c SCRIPT`), read by the test from
//! the fixture, rather than committing it into both repositories, so the repositories, the
//! plan branch and the landing are the same as every other cell's, and what runs is the
//! test's copy, not a file of the agent's worktree that an earlier attempt could have changed.
//! Its "outside" is a directory of the container's own (`/var/tmp`): the sandbox decides
//! whether the agent writes it, and nothing reaches this machine's. Its agent's network:
//! `confined` with the test's port in `network_allow`, reached through orch's proxy; `open`
//! is podman's network, whose `127.0.0.1` is the container's own (the port is not reached);
//! `none` nothing.
//!
//! Some combinations are refused by design: a network orch cannot enforce where the agent runs
//! (`confined` or `none` on a host or in a Slurm job: exit 6 at start, see the threat model's
//! "Confinement by executor"; a container confines it), best of N anywhere but for local
//! task-mode agents (a container too: exit 2, `orch check`'s error), and a
//! plan-mode agent on a host or in a container (exit 2, `orch check`'s error: there `orch next`
//! cannot see the plan's tasks). Each such pair has a cell of its own (its only refused pair) that
//! asserts the refusal and that nothing ran or moved. `every_pair_of_values_is_in_a_cell` below
//! proves the covering: every pair of values of two settings is in a cell that runs, or is a
//! refused pair and has its refusal cell.
//!
//! The ssh cells need `sshd` (`ORCH_REQUIRE_SSHD`), the Slurm cells a cluster
//! (`ORCH_REQUIRE_SLURM`, `.ci/slurm start`), the container cells podman and its test image
//! (`ORCH_REQUIRE_PODMAN`, `.ci/podman`), the sandboxed ones Landlock
//! (`ORCH_REQUIRE_LANDLOCK`): without them a cell says so and passes, unless CI requires them.

use crate::support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use support::{Repo, agent_at, events, named, sshd, toml_array};

/// The settings and their values, in the order of a cell's name.
const FACTORS: [(&str, &[&str]); 8] = [
    ("executor", &["local", "ssh", "slurm", "container"]),
    ("repository", &["home", "other"]),
    ("report", &["orch", "exit"]),
    ("sandbox", &["on", "off"]),
    ("network", &["confined", "none", "open"]),
    ("attempts", &["n1", "n2"]),
    ("mode", &["task", "plan"]),
    ("landing", &["train", "merge"]),
];

const EXEC: usize = 0;
const REPO: usize = 1;
const REPORT: usize = 2;
const SANDBOX: usize = 3;
const NET: usize = 4;
const ATTEMPTS: usize = 5;
const MODE: usize = 6;
const LAND: usize = 7;

/// One cell: a value of each setting, in [`FACTORS`]' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cell([&'static str; 8]);

/// A pair of values that cannot run together, by design, and how orch refuses it.
struct Refusal {
    pair: ((usize, &'static str), (usize, &'static str)),
    /// The exit code of `orch up`.
    code: i32,
    /// What its output says.
    says: &'static [&'static str],
}

impl Cell {
    fn get(&self, factor: usize) -> &'static str {
        self.0[factor]
    }

    /// The name of its test: the values in order, `sandbox_` before the sandbox's.
    fn name(&self) -> String {
        let v = self.0;
        format!(
            "{}_{}_{}_sandbox_{}_{}_{}_{}_{}",
            v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
        )
    }

    /// This cell with `value` for setting `factor`.
    fn with(mut self, factor: usize, value: &'static str) -> Self {
        self.0[factor] = value;
        self
    }

    /// Whether its agent is of a plan of another repository and calls `orch task` (`report =
    /// "orch"`, or a plan-mode agent, which claims and reports each task so).
    fn reports_from_another_repository(&self) -> bool {
        self.get(REPO) == "other" && (self.get(REPORT) == "orch" || self.get(MODE) == "plan")
    }

    /// The pairs of this cell that orch refuses by design.
    fn refusals(&self) -> Vec<Refusal> {
        let exec = self.get(EXEC);
        let mut out = Vec::new();
        if matches!(exec, "ssh" | "slurm") && matches!(self.get(NET), "confined" | "none") {
            out.push(Refusal {
                pair: ((EXEC, exec), (NET, self.get(NET))),
                code: 6,
                says: &[
                    "which cannot be enforced",
                    "whose network orch does not confine",
                    "network = \"open\"",
                ],
            });
        }
        if exec != "local" && self.get(ATTEMPTS) == "n2" {
            out.push(Refusal {
                pair: ((EXEC, exec), (ATTEMPTS, "n2")),
                code: 2,
                says: &[
                    "runs 2 attempts of each task through",
                    "best of N runs local agents only",
                ],
            });
        }
        if exec == "ssh" && self.get(MODE) == "plan" {
            out.push(Refusal {
                pair: ((EXEC, exec), (MODE, "plan")),
                code: 2,
                says: &[
                    "runs its plan-mode agent `a` on a `[[host]]`",
                    "give this plan a task-mode agent",
                ],
            });
        }
        if exec == "container" && self.get(MODE) == "plan" {
            out.push(Refusal {
                pair: ((EXEC, exec), (MODE, "plan")),
                code: 2,
                says: &[
                    "runs its plan-mode agent `a` in a container",
                    "`orch next` cannot read the plans",
                    "give this plan a task-mode agent",
                ],
            });
        }
        if self.get(MODE) == "plan" && self.get(ATTEMPTS) == "n2" {
            out.push(Refusal {
                pair: ((ATTEMPTS, "n2"), (MODE, "plan")),
                code: 2,
                says: &["runs 2 attempts of each task, but its agent works in plan mode"],
            });
        }
        out
    }
}

/// Lists the cells, each as a `#[test]` of its name, and [`CELLS`] / [`NAMES`] for the covering
/// proof.
macro_rules! cells {
    ($($name:ident = [$($v:literal),*];)*) => {
        const CELLS: &[Cell] = &[$(Cell([$($v),*])),*];
        const NAMES: &[&str] = &[$(stringify!($name)),*];
        $(
            #[test]
            fn $name() {
                run(Cell([$($v),*]));
            }
        )*
    };
}

cells! {
    // The cells that run: a greedy all-pairs cover of every pair that can run together, in which
    // every pair is also in a cell whose agent does not report through `orch task` from another
    // repository (see `reports_from_another_repository`), unless the pair itself says it does.
    local_home_exit_sandbox_off_open_n2_task_train =
        ["local", "home", "exit", "off", "open", "n2", "task", "train"];
    local_home_exit_sandbox_on_none_n1_plan_train =
        ["local", "home", "exit", "on", "none", "n1", "plan", "train"];
    local_home_orch_sandbox_off_confined_n1_plan_train =
        ["local", "home", "orch", "off", "confined", "n1", "plan", "train"];
    local_home_orch_sandbox_off_none_n2_task_merge =
        ["local", "home", "orch", "off", "none", "n2", "task", "merge"];
    local_other_exit_sandbox_on_confined_n2_task_merge =
        ["local", "other", "exit", "on", "confined", "n2", "task", "merge"];
    local_other_exit_sandbox_on_none_n2_task_merge =
        ["local", "other", "exit", "on", "none", "n2", "task", "merge"];
    local_other_orch_sandbox_off_none_n1_plan_merge =
        ["local", "other", "orch", "off", "none", "n1", "plan", "merge"];
    slurm_home_orch_sandbox_on_open_n1_plan_merge =
        ["slurm", "home", "orch", "on", "open", "n1", "plan", "merge"];
    slurm_other_exit_sandbox_off_open_n1_task_train =
        ["slurm", "other", "exit", "off", "open", "n1", "task", "train"];
    ssh_home_orch_sandbox_off_open_n1_task_train =
        ["ssh", "home", "orch", "off", "open", "n1", "task", "train"];
    ssh_other_exit_sandbox_on_open_n1_task_merge =
        ["ssh", "other", "exit", "on", "open", "n1", "task", "merge"];
    // Another repository with `report = "orch"` on each executor (issue 63's first case).
    local_other_orch_sandbox_on_open_n1_task_train =
        ["local", "other", "orch", "on", "open", "n1", "task", "train"];
    ssh_other_orch_sandbox_on_open_n1_task_merge =
        ["ssh", "other", "orch", "on", "open", "n1", "task", "merge"];
    slurm_other_orch_sandbox_on_open_n1_task_train =
        ["slurm", "other", "orch", "on", "open", "n1", "task", "train"];
    // One cell per pair refused by design, that pair its only one.
    ssh_home_orch_sandbox_off_confined_n1_task_train =
        ["ssh", "home", "orch", "off", "confined", "n1", "task", "train"];
    ssh_other_exit_sandbox_on_none_n1_task_merge =
        ["ssh", "other", "exit", "on", "none", "n1", "task", "merge"];
    slurm_other_exit_sandbox_off_confined_n1_task_merge =
        ["slurm", "other", "exit", "off", "confined", "n1", "task", "merge"];
    slurm_home_orch_sandbox_on_none_n1_plan_train =
        ["slurm", "home", "orch", "on", "none", "n1", "plan", "train"];
    ssh_home_exit_sandbox_on_open_n2_task_merge =
        ["ssh", "home", "exit", "on", "open", "n2", "task", "merge"];
    slurm_other_orch_sandbox_off_open_n2_task_train =
        ["slurm", "other", "orch", "off", "open", "n2", "task", "train"];
    local_home_exit_sandbox_off_open_n2_plan_merge =
        ["local", "home", "exit", "off", "open", "n2", "plan", "merge"];
    ssh_home_orch_sandbox_on_open_n1_plan_train =
        ["ssh", "home", "orch", "on", "open", "n1", "plan", "train"];
    // Containers (issue 63/64): the cells the covering needs, and the refusal of best of N.
    container_home_orch_sandbox_on_confined_n1_task_train =
        ["container", "home", "orch", "on", "confined", "n1", "task", "train"];
    container_other_exit_sandbox_off_none_n1_task_merge =
        ["container", "other", "exit", "off", "none", "n1", "task", "merge"];
    container_home_exit_sandbox_on_open_n1_task_train =
        ["container", "home", "exit", "on", "open", "n1", "task", "train"];
    container_other_orch_sandbox_on_open_n1_task_merge =
        ["container", "other", "orch", "on", "open", "n1", "task", "merge"];
    container_home_exit_sandbox_off_open_n2_task_merge =
        ["container", "home", "exit", "off", "open", "n2", "task", "merge"];
    container_home_exit_sandbox_off_open_n1_plan_merge =
        ["container", "home", "exit", "off", "open", "n1", "plan", "merge"];
}

#[test]
fn every_pair_of_values_is_in_a_cell() {
    // Every cell is named by its values, holds a value of each setting, and is listed once.
    assert_eq!(CELLS.len(), NAMES.len());
    for (cell, name) in CELLS.iter().zip(NAMES) {
        assert_eq!(cell.name(), *name, "a cell's test is named by its values");
        for (i, (factor, values)) in FACTORS.iter().enumerate() {
            assert!(values.contains(&cell.get(i)), "{name}: {factor}");
        }
        // A refusal cell refuses one pair only, so that its refusal is that pair's.
        assert!(
            cell.refusals().len() <= 1,
            "{name} refuses more than one pair"
        );
    }
    let names: BTreeSet<&&str> = NAMES.iter().collect();
    assert_eq!(names.len(), NAMES.len(), "a cell listed twice");
    // Every pair of values of two settings: in a cell that runs, or refused by design with a
    // cell of its own asserting the refusal.
    let mut missing = Vec::new();
    for (i, (first, first_values)) in FACTORS.iter().enumerate() {
        for (j, (second, second_values)) in FACTORS.iter().enumerate().skip(i + 1) {
            for &a in *first_values {
                for &b in *second_values {
                    let runs = CELLS
                        .iter()
                        .any(|c| c.refusals().is_empty() && c.get(i) == a && c.get(j) == b);
                    let refused = CELLS
                        .iter()
                        .any(|c| c.refusals().iter().any(|r| r.pair == ((i, a), (j, b))));
                    if !runs && !refused {
                        missing.push(format!("{first}={a} × {second}={b}"));
                    }
                }
            }
        }
    }
    assert!(missing.is_empty(), "pairs in no cell: {missing:#?}");
    // Each pair that does not itself put an agent reporting through `orch task` in another
    // repository is also in a cell that runs without one: a failure of that report channel
    // hides no other pair.
    let mut hidden = Vec::new();
    for (i, (first, first_values)) in FACTORS.iter().enumerate() {
        for (j, (second, second_values)) in FACTORS.iter().enumerate().skip(i + 1) {
            for &a in *first_values {
                for &b in *second_values {
                    let pair = Cell([
                        "local", "home", "exit", "off", "open", "n1", "task", "merge",
                    ])
                    .with(i, a)
                    .with(j, b);
                    if pair.reports_from_another_repository() || !pair.refusals().is_empty() {
                        continue;
                    }
                    let clear = CELLS.iter().any(|c| {
                        c.refusals().is_empty()
                            && !c.reports_from_another_repository()
                            && c.get(i) == a
                            && c.get(j) == b
                    });
                    if !clear {
                        hidden.push(format!("{first}={a} × {second}={b}"));
                    }
                }
            }
        }
    }
    assert!(
        hidden.is_empty(),
        "pairs only in cells reporting from another repository: {hidden:#?}"
    );
}

/// The directory a container cell's agent tries to write: the container's own, outside its
/// worktree (nothing of this machine but the worktree and orch's directories is mounted).
const CONTAINER_OUTSIDE: &str = "/var/tmp";

/// The plan every cell runs: two tasks, the second after the first.
const PLAN: &str =
    "# Compose\n\n## Phase 1: Work\n- [ ] 1.1 First step\n- [ ] 1.2 Second step (depends: 1.1)\n";

/// Where a cell runs: the home repository (plans.toml), the other one (`[[repo]]` `api`), a
/// directory outside every worktree, a loopback listener, the `sshd` of its host.
struct World {
    _dir: tempfile::TempDir,
    home: Repo,
    api: Repo,
    outside: PathBuf,
    listener: TcpListener,
    lab: Option<sshd::Lab>,
}

impl World {
    fn new(cell: Cell) -> Self {
        let dir = match cell.get(EXEC) {
            "slurm" => tempfile::tempdir_in(support::slurm::disk_dir()),
            _ => tempfile::tempdir(),
        }
        .expect("tempdir");
        // A Slurm job's processes wait in the queue: more time for its cells.
        let secs = match cell.get(EXEC) {
            "slurm" => 150,
            "ssh" | "container" => 120,
            _ => 90,
        };
        let make = || {
            Repo::builder()
                .under(dir.path())
                .canonical()
                .identity_in_config()
                .timeout(Duration::from_secs(secs))
                .build()
        };
        let (home, api) = (make(), make());
        let outside = dir
            .path()
            .canonicalize()
            .expect("canonical")
            .join("outside");
        std::fs::create_dir_all(&outside).expect("outside");
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let lab = (cell.get(EXEC) == "ssh").then(|| sshd::Lab::start(&["h1"]));
        World {
            _dir: dir,
            home,
            api,
            outside,
            listener,
            lab,
        }
    }

    /// The repository of the plan.
    fn own(&self, cell: Cell) -> &Repo {
        if cell.get(REPO) == "other" {
            &self.api
        } else {
            &self.home
        }
    }

    /// The other one (where nothing of the plan may appear).
    fn not_own(&self, cell: Cell) -> &Repo {
        if cell.get(REPO) == "other" {
            &self.home
        } else {
            &self.api
        }
    }

    /// Writes and commits plans.toml and the plan file in the home repository.
    fn commit_manifest(&self, cell: Cell) {
        let port = self.listener.local_addr().expect("addr").port().to_string();
        let container = cell.get(EXEC) == "container";
        let command = if container {
            // In a container only the worktree is there, not this fixture: the script goes
            // inline (`sh -c`), and "outside" is a directory of the container's own.
            let path = support::fixtures().join("compose_agent.sh");
            let script = std::fs::read_to_string(&path).expect("compose_agent.sh");
            toml_array(&[
                "sh".to_string(),
                "-c".to_string(),
                script,
                "compose_agent.sh".to_string(),
                cell.get(REPORT).to_string(),
                cell.get(MODE).to_string(),
                CONTAINER_OUTSIDE.to_string(),
                port.clone(),
            ])
        } else {
            agent_at(
                "compose_agent.sh",
                &[
                    Path::new(cell.get(REPORT)),
                    Path::new(cell.get(MODE)),
                    &self.outside,
                    Path::new(&port),
                ],
            )
        };
        let mut toml = String::new();
        if let Some(lab) = &self.lab {
            toml.push_str(&lab.host_toml(2));
        }
        toml.push_str(&format!(
            "[defaults]\nagent = \"a\"\nretries = 0\nmax_agents = 2\nexecutor = \"{exec}\"\n\
             sandbox = \"{sandbox}\"\nnetwork = \"{net}\"\nattempts = {n}\nauto_merge = {train}\n{image}\n\
             [agents.a]\ncommand = {command}\nreport = \"{report}\"\nmode = \"{mode}\"\n",
            exec = cell.get(EXEC),
            sandbox = cell.get(SANDBOX),
            net = cell.get(NET),
            n = &cell.get(ATTEMPTS)[1..],
            train = cell.get(LAND) == "train",
            report = cell.get(REPORT),
            mode = cell.get(MODE),
            image = if container {
                format!("image = \"{}\"\n", support::podman::IMAGE)
            } else {
                String::new()
            },
        ));
        if container {
            // A confined container agent reaches the test's port because it is allowed.
            toml.push_str(&format!("network_allow = [\"127.0.0.1:{port}\"]\n"));
        }
        if cell.get(EXEC) == "slurm" {
            toml.push_str("\n[slurm]\npoll = \"1s\"\n");
        }
        let repo_line = if cell.get(REPO) == "other" {
            let name = self.api.root().file_name().expect("name");
            toml.push_str(&format!(
                "\n[[repo]]\nname = \"api\"\npath = \"../{}\"\n",
                name.to_string_lossy()
            ));
            "repo = \"api\"\n"
        } else {
            ""
        };
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{repo_line}"
        ));
        self.home.write("docs/plans/p.md", PLAN);
        self.home.write("plans.toml", &toml);
        self.home.commit_all("plans");
    }

    /// `orch ARGS` in the home repository (with the host's `ssh` first on PATH): exit code and
    /// what it printed.
    fn orch(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = self.home.orch(args);
        if let Some(lab) = &self.lab {
            cmd.env("PATH", lab.path());
        }
        self.home.run_cmd(&mut cmd)
    }
}

/// Whether what the cell needs is here; says why not (and fails where CI requires it).
fn available(cell: Cell) -> bool {
    let needs_landlock = cell.get(SANDBOX) == "on" && cell.refusals().is_empty();
    match cell.get(EXEC) {
        "ssh" if !sshd::available() => return false,
        "slurm" if !support::slurm::cluster() => return false,
        "container" if !support::podman::available() => return false,
        _ => {}
    }
    !needs_landlock || support::landlock()
}

fn run(cell: Cell) {
    if !available(cell) {
        return;
    }
    let world = World::new(cell);
    world.commit_manifest(cell);
    match cell.refusals().pop() {
        Some(refusal) => refused(&world, cell, &refusal),
        None => lands(&world, cell),
    }
}

/// A pair refused by design: `orch up` says why with its exit code, nothing starts, nothing
/// moves in either repository.
fn refused(world: &World, cell: Cell, refusal: &Refusal) {
    let mains = (world.home.rev("main"), world.api.rev("main"));
    let (code, out, err) = world.orch(&["up", "--json"]);
    let all = format!("{out}\n{err}");
    assert_eq!(code, refusal.code, "{}: {all}", cell.name());
    for s in refusal.says {
        assert!(all.contains(s), "{}: lacks {s:?}:\n{all}", cell.name());
    }
    // No attempt started, nothing committed or landed.
    let ev = events(&out);
    assert!(named(&ev, "task_started").is_empty(), "{all}");
    assert!(
        std::fs::read_dir(&world.outside)
            .expect("outside")
            .next()
            .is_none(),
        "an agent ran: {all}"
    );
    for r in [&world.home, &world.api] {
        assert!(!r.branch_exists("plan/p"), "{}", r.refs());
    }
    assert_eq!((world.home.rev("main"), world.api.rev("main")), mains);
    // `orch check` refuses a manifest error the same way, at the line of the value.
    if refusal.code == 2 {
        let (code, out, err) = world.orch(&["check"]);
        assert_eq!(code, 2, "orch check: {out}{err}");
        assert!(err.contains("plans.toml:"), "{err}");
    }
}

/// A cell that runs: the plan's tasks completed with their commits on the plan branch of its
/// own repository, landed on that repository's target.
fn lands(world: &World, cell: Cell) {
    let own = world.own(cell);
    let other = world.not_own(cell);
    let other_main = other.rev("main");
    let base = own.rev("main");
    let (code, out, err) = world.orch(&["up", "--json"]);
    let all = format!("{}\nstdout:\n{out}\nstderr:\n{err}", cell.name());
    assert_eq!(code, 0, "orch up: {all}\n{}", logs(own));
    let ev = events(&out);

    // Each task completed, with its commit, in the plan's own repository's status file.
    let status = read_status(own);
    let tasks = status["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 2, "{all}");
    for t in tasks {
        assert_eq!(t["status"], "completed", "task {}: {all}", t["id"]);
        assert!(
            t["commit"].is_string(),
            "task {} has no commit: {all}",
            t["id"]
        );
    }
    // Their commits on the plan branch there, one per task, in order; none in the other.
    let range = format!("{base}..plan/p");
    let log = |format: &str| -> Vec<String> {
        own.git(&["log", "--reverse", "--no-merges", format, &range])
            .lines()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        log("--format=%s"),
        ["p 1.1: First step", "p 1.2: Second step"],
        "{all}"
    );
    let commits = log("--format=%H");
    for (t, c) in tasks.iter().zip(&commits) {
        assert_eq!(t["commit"].as_str(), Some(c.as_str()), "{all}");
    }
    assert!(!other.branch_exists("plan/p"), "{}", other.refs());

    // What the agent could do: written outside its worktree only unconfined, reached the
    // test's port only on an open network.
    let outside = if cell.get(SANDBOX) == "on" {
        "denied"
    } else {
        "written"
    };
    // In a container: the port is reached through orch's proxy, confined with the port
    // allowed; podman's open network has a loopback of its own, `none` nothing.
    let reached = match cell.get(EXEC) {
        "container" => cell.get(NET) == "confined",
        _ => cell.get(NET) == "open",
    };
    let net = if reached { "reached" } else { "refused" };
    let want = format!("1.1 outside={outside} net={net}\n1.2 outside={outside} net={net}\n");
    assert_eq!(
        own.git(&["show", "plan/p:compose.txt"]) + "\n",
        want,
        "{all}"
    );
    // That write is on this machine, but for a container's agent, which writes in its own.
    let written = std::fs::read_dir(&world.outside).expect("outside").count();
    let here = outside == "written" && cell.get(EXEC) != "container";
    assert_eq!(written > 0, here, "{all}");

    // Best of 2: each task's round ran two attempts.
    if cell.get(ATTEMPTS) == "n2" {
        for task in ["1.1", "1.2"] {
            let attempts: BTreeSet<u64> = named(&ev, "task_started")
                .iter()
                .filter(|e| e["task"] == task)
                .filter_map(|e| e["attempt"].as_u64())
                .collect();
            assert_eq!(attempts, BTreeSet::from([1, 2]), "task {task}: {all}");
        }
    }

    // The landing: by the train in this run, or by `orch merge` now.
    let landing = if cell.get(LAND) == "train" {
        let merged = named(&ev, "plan_merged");
        assert_eq!(merged.len(), 1, "{all}");
        merged[0]["commit"].as_str().map(str::to_string)
    } else {
        assert!(named(&ev, "plan_merged").is_empty(), "{all}");
        assert_eq!(own.rev("main"), base, "landed without being asked: {all}");
        let (code, out, err) = world.orch(&["merge"]);
        assert_eq!(code, 0, "orch merge: {out}\n{err}\n{all}");
        None
    };
    let tip = own.rev("main");
    if let Some(c) = landing {
        assert_eq!(c, tip, "plan_merged names the new tip: {all}");
    }
    // The target holds the tasks' work, through a commit whose parents are the old target and
    // the plan branch's tip; the other repository's target did not move.
    assert_eq!(own.git(&["show", "main:compose.txt"]) + "\n", want, "{all}");
    let plan_tip = own.rev("plan/p");
    let parents = own.git(&["rev-list", "--parents", "-n", "1", "main"]);
    assert_eq!(
        parents.split(' ').skip(1).collect::<Vec<_>>(),
        [base.as_str(), plan_tip.as_str()],
        "the target's new tip merges the plan branch into the old: {all}"
    );
    assert_eq!(other.rev("main"), other_main, "{all}");
    assert!(other.git_out(&["show", "main:compose.txt"]).status.code() != Some(0));
    // Its record says so.
    let record = &read_status(own)["orchMerge"];
    assert_eq!(record["state"], "merged", "{record}\n{all}");
    assert_eq!(record["commit"].as_str(), Some(tip.as_str()), "{record}");
}

/// Plan `p`'s status file in repository `r`.
fn read_status(r: &Repo) -> Value {
    let path = r.root().join(".orch/state/p/status.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("status json")
}

/// The logs of plan `p`'s attempts in repository `r` (the end of each), to say why a cell
/// failed.
fn logs(r: &Repo) -> String {
    let dir = r.root().join(".orch/logs/p");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    let mut out = String::new();
    for path in names {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let tail: String = text
            .chars()
            .rev()
            .take(3000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        out.push_str(&format!("--- {}:\n{tail}\n", path.display()));
    }
    out
}
