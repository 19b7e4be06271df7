//! The clap definitions: every subcommand, its arguments and their help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::commands::Selection;

pub(super) use super::arg_types::{
    ControlPlan, ControlTask, GraphFormat, StrategyArg, parse_duration_arg,
};
pub(super) use super::task_args::TaskAction;

/// Run many markdown plans at once, each on its own git branch and worktree, with AI coding
/// agents; merge the finished work back in dependency order.
///
/// Exit codes: 0 ok, 1 operation failed, 2 invalid input (command line, manifest, plan,
/// agent, template), 3 corrupt status file, 4 refused (a transition out of order, a branch or
/// directory orch did not make, uncommitted changes that matter, a supervisor already running,
/// a plan not ready to merge), 5 not everything succeeded (`orch up`: a plan failed or is
/// blocked or its budget was reached; `orch merge`: a plan left unmerged; `orch sync`: an upstream
/// merge conflicts; `orch conflicts`: a pair conflicts; `orch clean`: a plan was kept), 6 an agent
/// cannot work until a person fixes it (`orch up`: program missing, flags rejected, not logged
/// in), 130 interrupted.
///
/// Environment: `NO_COLOR` (no colour unless `--color always`), `CLICOLOR_FORCE` (colour in a
/// pipe too), `RUST_LOG` (diagnostics on stderr: `RUST_LOG=orch=debug orch up`).
#[derive(Parser, Debug, PartialEq)]
#[command(name = "orch", version, about, long_about, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
    /// When to colour the output: `auto` (on a terminal, unless `NO_COLOR` is set), `always`,
    /// `never`.
    #[arg(long, global = true, value_name = "WHEN", value_enum, default_value_t = ColorWhen::Auto)]
    pub(super) color: ColorWhen,
}

/// `--color`'s values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum ColorWhen {
    Auto,
    Always,
    Never,
}

impl From<ColorWhen> for crate::color::When {
    fn from(w: ColorWhen) -> Self {
        match w {
            ColorWhen::Auto => Self::Auto,
            ColorWhen::Always => Self::Always,
            ColorWhen::Never => Self::Never,
        }
    }
}

/// The `--color` of a line clap refused or answered with help or the version: the line read
/// again by clap, leniently (errors ignored, help and version flags turned off), for what
/// `--color` says, so that clap's help and errors follow it too (`orch --color never next
/// --help`). `Auto` when it cannot tell (no `--color` before the first error).
pub(super) fn color_of_failed_line(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> ColorWhen {
    use clap::CommandFactory;
    fn lenient(cmd: clap::Command) -> clap::Command {
        cmd.ignore_errors(true)
            .disable_help_flag(true)
            .disable_version_flag(true)
            .disable_help_subcommand(true)
            .mut_subcommands(lenient)
    }
    lenient(Cli::command())
        .try_get_matches_from(args)
        .ok()
        .and_then(|m| m.get_one::<ColorWhen>("color").copied())
        .unwrap_or(ColorWhen::Auto)
}

/// Where to find plans: a manifest and/or one plan.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub(super) struct Target {
    /// The manifest to use instead of the `plans.toml` found by walking up from the current
    /// directory. Example: `--manifest ../repo/plans.toml`.
    #[arg(long, short = 'm', global = true, value_name = "PATH")]
    pub(super) manifest: Option<PathBuf>,
    /// One plan: a name from `plans.toml`, or a path to a plan file (works without any
    /// plans.toml). Example: `--plan auth` or `--plan docs/plans/auth.md`.
    #[arg(long, short = 'p', value_name = "NAME|PATH")]
    pub(super) plan: Option<String>,
}

impl Target {
    pub(super) fn selection(&self) -> Selection {
        Selection {
            manifest: self.manifest.clone(),
            plan: self.plan.clone(),
        }
    }
}

#[derive(Subcommand, Debug, PartialEq)]
pub(super) enum Command {
    /// Check the manifest and every plan; print every problem with its location, then the
    /// waves and the critical path.
    ///
    /// Exit code 0 when valid (warnings allowed), 2 when there is any error.
    /// Example: `orch check`, `orch check --plan docs/plans/auth.md --json`.
    Check {
        #[command(flatten)]
        target: Target,
        /// Print one JSON object (`valid`, `diagnostics`, `waves`, `critical_path`).
        #[arg(long)]
        json: bool,
    },
    /// Show per-plan and per-phase progress from the status files.
    ///
    /// Example: `orch status`, `orch status --plan auth --json`, `orch status --watch`.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print JSON: with --plan one object with `tasks` and `summary`, else `{"plans": [...]}`.
        #[arg(long)]
        json: bool,
        /// Move the status file aside (kept as `status.json.corrupt-<time>`) and write a fresh
        /// one from the plan: the way out of a corrupt status file.
        #[arg(long)]
        rebuild: bool,
        /// Keep running: print the view again whenever a status file changes (checked at least
        /// every 2 s), until Ctrl-C. On a terminal the screen is redrawn; otherwise each new
        /// view follows a `--- HH:MM:SS ---` line; with --json each change is one JSON object
        /// on one line. Example: `orch status --watch`, `orch status --watch --json | jq -c '.plans[].summary'`.
        #[arg(long)]
        watch: bool,
        /// Text: list every phase and every running or failed task. Without it, a plan of more
        /// than 12 phases shows its finished phases and the phases after the next ten as one line
        /// each, and at most 10 running or failed tasks. Example: `orch status --all`.
        #[arg(long)]
        all: bool,
        /// Also show what each plan's worktrees take on disk (its worktree and task worktrees,
        /// without the shared git objects; `disk_bytes` with --json). Example: `orch status --disk`.
        #[arg(long, conflicts_with = "watch")]
        disk: bool,
    },
    /// List the tasks that may start now, in the order orch would start them, and why the
    /// others wait.
    ///
    /// Inside an agent, `ORCH_PLAN` and `ORCH_STATUS_FILE` select the plan.
    /// Example: `orch next -n 3 --plan auth --json`.
    Next {
        #[command(flatten)]
        target: Target,
        /// At most this many ready tasks (and, with --json, blocked tasks). Example: `-n 1`.
        #[arg(short = 'n', long = "count", value_name = "N")]
        count: Option<usize>,
        /// Print `{"tasks": [...ready], "blocked": [...], "ready_total", "blocked_total", ...}`;
        /// `blocked` holds at most N (-n) or 20 entries unless --all.
        #[arg(long)]
        json: bool,
        /// List every blocked task with its reasons (text: grouped by reason). Example: `orch next --all`.
        #[arg(long)]
        all: bool,
        /// Explain one task: ready or not, and everything it waits for. Example: `orch next --why 2.3`,
        /// `orch next --why auth:2.3`.
        #[arg(long, value_name = "ID")]
        why: Option<String>,
    },
    /// Serve orch's verbs to an agent over MCP (see `orch mcp --help`).
    #[command(
        about = super::mcp_args::ABOUT,
        long_about = super::mcp_args::LONG,
        after_help = super::mcp_args::EXAMPLES
    )]
    Mcp(super::mcp_args::Mcp),
    /// Serve a live web view of the run (see `orch serve --help`).
    #[command(
        about = super::serve_args::ABOUT,
        long_about = super::serve_args::LONG,
        after_help = super::serve_args::EXAMPLES
    )]
    Serve(super::serve_args::Serve),
    /// Record a task's outcome: what agents call.
    ///
    /// Example: `orch task done 2.3 --note "added tests"`, `orch task fail 2.3 --error "build broke"`.
    Task {
        #[command(subcommand)]
        action: TaskAction,
    },
    /// Simulate runs of the plans before spending tokens: the scheduler of `orch up` against a
    /// virtual clock (no agents, no git, nothing written), for several policies and agent counts.
    ///
    /// Task durations are their `(est: 20m)` annotations, `--default-duration` for the others;
    /// with `--seed N` each task takes its estimate times a random factor (log-normal, median 1,
    /// σ 0.5, clamped to ¼–4×), the same for the same seed. The scheduler itself only sees the
    /// estimates. Per run: the makespan, the lower bound max(critical path, total work ÷ slots),
    /// agent utilisation (busy time ÷ slots × makespan) and parallel efficiency (1 − makespan ÷
    /// sequential time), then a Gantt chart of the first policy (one row per agent slot).
    ///
    /// Policies: `orch` (the real scheduler), `batched` (the earlier system: up to N ready tasks,
    /// then wait for all of them), `phase80` (a phase opens when 80 % of the earlier phases'
    /// tasks are done). Exit codes: 0 ok, 2 invalid input (plans, options).
    /// Examples: `orch simulate`, `orch simulate --slots 2,4,8 --seed 7`,
    /// `orch simulate --plan docs/plans/auth.md --policy orch --json | jq '.runs[].makespan_s'`.
    Simulate {
        #[command(flatten)]
        target: Target,
        /// The plans to simulate (names from plans.toml); all of them when none is given. Plans
        /// left out count as finished. Example: `orch simulate auth api`.
        #[arg(value_name = "PLAN")]
        plans: Vec<String>,
        /// Agent slot counts to try, comma-separated (default: `max_agents` of the manifest, 4
        /// without one). Example: `--slots 2,4,8`.
        #[arg(long, value_name = "N,N,…", value_delimiter = ',')]
        slots: Vec<usize>,
        /// The duration of a task without `(est: …)`. Example: `--default-duration 20m`.
        #[arg(long, value_name = "DURATION", default_value = "10m")]
        default_duration: String,
        /// Draw each task's duration at random around its estimate, reproducibly.
        /// Example: `--seed 7`.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Policies to compare, comma-separated: `orch`, `batched`, `phase80` (default: all).
        /// Example: `--policy orch,batched`.
        #[arg(long, value_name = "NAME,…", value_delimiter = ',')]
        policy: Vec<String>,
        /// Most agents on one plan at once, for every plan. Default: what `orch up` would run
        /// (the manifest's `parallel` / `parallel_tasks`, one plan-mode agent); a plan file
        /// given alone has no limit. Example: `--per-plan 4` to see what `parallel_tasks = 4`
        /// would buy.
        #[arg(long, value_name = "N")]
        per_plan: Option<usize>,
        /// Width of the Gantt chart in columns (default: the terminal's, else 100).
        #[arg(long, value_name = "COLUMNS")]
        width: Option<usize>,
        /// Print one JSON object: `runs` (one per policy and slot count, with `policy`, `slots`,
        /// `makespan_s`, `lower_bound_s`, `utilisation`, `parallel_efficiency`, `schedule`).
        #[arg(long)]
        json: bool,
        /// Also forecast from the history of earlier runs (`orch history`): each task's
        /// duration, cost and failures drawn from what the most similar attempts took, the
        /// scheduler run 200 times, the end and cost as p50 and p90 (`forecast` in the JSON).
        #[arg(long)]
        history: bool,
    },
    /// Run the plans: a git worktree and branch per plan, agents launched for ready tasks under
    /// the limits, each finished task committed on the plan's branch, until every plan is
    /// finished, failed or blocked.
    ///
    /// Resumable: after Ctrl-C, a crash or `kill -9`, run it again; finished work is kept,
    /// agents still alive are watched again, and tasks whose agent is gone run again. First
    /// Ctrl-C: start nothing new and let running agents finish; second Ctrl-C: stop them now.
    ///
    /// Exit codes: 0 every plan completed, 2 invalid input, 4 refused (a branch or directory
    /// orch did not make, an uncommitted plan file, another `orch up` running), 5 a plan failed
    /// or is blocked or a budget was reached, 6 an agent cannot work until a person fixes it
    /// (its program is missing, its client rejected orch's flags, it is not logged in), 130
    /// interrupted.
    /// Example: `orch up`, `orch up auth api --max-agents 2`, `orch up --json > events.jsonl`.
    Up {
        #[command(flatten)]
        target: Target,
        /// The plans to run (names from plans.toml); all of them when none is given.
        /// Example: `orch up auth api`.
        #[arg(value_name = "PLAN")]
        plans: Vec<String>,
        /// Print one JSON event per line instead of progress bars (`task_started`,
        /// `task_finished`, `task_failed`, `plan_finished`, `plan_blocked`, …). The same lines
        /// go to the `[[notify]]` hooks of plans.toml (a command's stdin, a webhook's POST).
        #[arg(long)]
        json: bool,
        /// Agents running at once, all plans together (overrides `defaults.max_agents`).
        /// Example: `--max-agents 8`.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        max_agents: Option<u16>,
        /// The merge train: merge each plan into the target (with `orch merge`: built, verified,
        /// then the target moves) as soon as it and its upstream plans are done, while the other
        /// plans keep running. Same as `auto_merge = true` in plans.toml.
        #[arg(long)]
        merge: bool,
        /// When the run ends with every plan done: `orch pr --watch` (the plans' pull requests
        /// opened or updated, then the review loop). Example: `orch up --pr`.
        #[arg(long)]
        pr: bool,
    },
    /// Show which plan branches would conflict with each other or with the target, and on which
    /// files.
    ///
    /// Each pair of existing plan branches, and each plan branch against the target, is merged
    /// by `git merge-tree` (nothing is written to the repository). Plans not started yet (no branch) are compared by the files their tasks name,
    /// against the other plans' task files and the files their branches changed: those pairs
    /// are marked "predicted".
    ///
    /// Exit codes: 0 no merge conflict (predicted overlaps are warnings), 5 some pair conflicts,
    /// 2 invalid input.
    /// Example: `orch conflicts`, `orch conflicts auth --json`.
    Conflicts {
        #[command(flatten)]
        target: Target,
        /// Only pairs involving these plans (names from plans.toml); all when none is given.
        /// Example: `orch conflicts auth api`.
        #[arg(value_name = "PLAN")]
        plans: Vec<String>,
        /// Print `{"target", "plans": [...], "pairs": [{"a", "b", "conflict", "files", "kind"}]}`
        /// (`kind` is `merge` or `predicted`; `b` is the target's name for a branch-vs-target
        /// pair, with `with_target: true`).
        #[arg(long)]
        json: bool,
    },
    /// Check the `[[host]]` machines that run agents over SSH (`executor = "ssh"`).
    ///
    /// Each host is reached with `ssh` from PATH (your SSH config, keys and agent), one shared
    /// connection per host; orch copies itself to the host's `dir` when the copy there is missing
    /// or differs, then says whether the host answers, its Landlock ABI, its git version, the free
    /// space under `dir`, and which presets' clients its PATH has.
    ///
    /// Exit codes: 0 every host is ready, 5 some host does not answer or cannot run agents
    /// (no Landlock with `sandbox = "on"`), 2 invalid input.
    /// Example: `orch hosts`, `orch hosts --json`.
    Hosts {
        #[command(flatten)]
        target: Target,
        /// Print `{"hosts": [{"name", "answers", "usable", "error", "copied", "landlock_abi",
        /// "git", "free_bytes", "clients"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Test the combination of every plan branch now: the integration preview.
    ///
    /// The target's tip with every plan branch that has commits of its own merged in, in the
    /// order `orch merge` uses, built in memory as the merge train builds a step; with `verify`
    /// in `[defaults]`, that commit is checked out in a staging worktree of orch's own and
    /// verified there (without `verify`, only textual conflicts are checked). On a failure, orch
    /// names the plans that break together: the smallest failing prefix of the merge order, then
    /// the earlier plans its last plan (the culprit) needs to fail. No branch, target or plan
    /// worktree changes.
    ///
    /// Exit codes: 0 green or nothing to test, 5 red, 1 a git error, 2 invalid input, 130
    /// interrupted (the verify command is stopped).
    /// Example: `orch integrate`, `orch integrate --json`.
    Integrate {
        #[command(flatten)]
        target: Target,
        /// Print the report as JSON: `{"target", "target_commit", "tested": [...], "verified",
        /// "trials", "result": "green"|"red"|"nothing_to_test", "failure": {"plans", "culprit",
        /// "conflict" | "verify": {"exit_code", "last_lines"}, "commits"}}`.
        #[arg(long)]
        json: bool,
    },
    /// Remove the worktrees and branches of merged plans, never losing unmerged work.
    ///
    /// Merged: the branch tip is in the target's history, or merging it into the target would
    /// change nothing (a squash merge). A plan with unmerged commits or a worktree with
    /// uncommitted or untracked files (ignored files do not count) is kept, with the reason.
    /// Saved attempts (`refs/orch/attempts/<plan>/`) are always kept. Refused while `orch up`
    /// runs in the repository.
    ///
    /// Exit codes: 0 everything asked for was cleaned (or there was nothing to do), 5 some plan
    /// was kept, 1 an operation failed, 2 invalid input, 4 `orch up` is running.
    /// Example: `orch clean`, `orch clean auth --dry-run`, `orch clean api --force`.
    Clean {
        #[command(flatten)]
        target: Target,
        /// The plans to clean (names from plans.toml); all of them when none is given.
        /// Example: `orch clean auth api`.
        #[arg(value_name = "PLAN")]
        plans: Vec<String>,
        /// Remove unmerged and dirty plans too: first save the branch tip as
        /// `refs/orch/backup/<plan>/<UTC time>` and the uncommitted files as a commit under
        /// `…-worktree`. Example: `orch clean api --force`.
        #[arg(long)]
        force: bool,
        /// Print what would be removed and saved; change nothing. Example: `orch clean -n`.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Print `{"plans": [{"plan", "outcome", "reasons", "backups", …}]}` instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Merge finished plans into the target branch: upstream plans first (`depends_on`), then
    /// higher priority, then name. Each merge is built in memory, run through `verify` (if set)
    /// in a staging worktree, and only then moves the target (and the work tree that has it
    /// checked out), and only if nobody moved the target meanwhile.
    ///
    /// Without PLAN: every finished plan not merged yet. A conflicting or failing plan is not
    /// merged; plans that depend on it are skipped; the others go on.
    ///
    /// Exit codes: 0 every requested plan merged (or nothing to do), 2 invalid input, 4 refused
    /// (uncommitted changes where the target is checked out, an unfinished plan, an upstream
    /// plan not merged, a plan that changes what a later run trusts where its `allow_protected`
    /// does not allow it and no `--allow-protected`, a symbolic link at such a path), 5 a plan not merged (conflict, failed verification, skipped), 130
    /// interrupted.
    /// Example: `orch merge`, `orch merge auth api --dry-run`, `orch merge --strategy squash --json`.
    Merge {
        #[command(flatten)]
        target: Target,
        /// The plans to merge (names from plans.toml), with their order worked out; all finished
        /// plans when none is given. Example: `orch merge auth api`.
        #[arg(value_name = "PLAN")]
        plans: Vec<String>,
        /// Print the order and the predicted result of each step (clean, conflicts in which
        /// files, already merged), computed in memory; change nothing. Example: `orch merge --dry-run`.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON object: `target`, `strategy`, `steps` (`plan`, `branch`, `result`,
        /// `commit`, `files`, `reason`, `archive_tag`), `unfinished`.
        /// Example: `orch merge --dry-run --json | jq '.steps[].result'`.
        #[arg(long)]
        json: bool,
        /// How a plan lands (overrides `defaults.merge_strategy`): `merge` a merge commit,
        /// `squash` one commit with the plan's changes, `ff-only` fast-forward only.
        /// Example: `--strategy squash`.
        #[arg(long, value_enum, value_name = "STRATEGY")]
        strategy: Option<StrategyArg>,
        /// Stop at the first plan that is not merged; the rest are reported as skipped.
        /// Example: `orch merge --stop-on-failure`.
        #[arg(long)]
        stop_on_failure: bool,
        /// Land a plan whose branch changes what a later run trusts (`plans.toml`, a plan file,
        /// a prompt template, `.gitmodules`, a client's settings, the program or script of a
        /// command line) that the plan's `allow_protected` in plans.toml does not allow, after
        /// you reviewed the change. Without it such a run is refused (exit 4, the files named,
        /// nothing moved); what a task's text names never allows it. A symbolic link at such a
        /// path is never landed. Example: `orch merge p --allow-protected`.
        #[arg(long)]
        allow_protected: bool,
    },
    /// Hand finished plans to review as stacked pull requests: push each plan's branch to the
    /// remote (`remote` in `[defaults]`, `origin` by default) and open or update one pull
    /// request per plan with the GitHub CLI (`gh`).
    ///
    /// A plan's base is the branch of the plan it depends on while that plan is not merged into
    /// the target (a stack), else the target. Plans go upstream first. A pull request that
    /// exists (`gh pr list --head BRANCH`) is updated with `gh pr edit`, its base moved when the
    /// upstream plan merged. The body lists the plan's tasks with their commits, its checks and
    /// the plans it depends on (also written to `<state_dir>/<plan>/pull-request.md`). The first
    /// failing `git` or `gh` command stops the run, naming the plan and the command.
    ///
    /// Exit codes: 0 ok, 1 a `git` or `gh` command failed, 2 invalid input, 4 refused (a named
    /// plan is not finished or has no branch).
    /// Example: `orch pr`, `orch pr auth api --dry-run`, `orch pr --json | jq '.plans[].url'`.
    Pr {
        #[command(flatten)]
        target: Target,
        /// The plans to hand over (names from plans.toml); every finished plan not merged yet
        /// when none is given. Example: `orch pr api`.
        #[arg(value_name = "PLAN")]
        plans: Vec<String>,
        /// Print the commands instead of running them (only the read-only `gh pr list` runs,
        /// to tell a new pull request from an update). Example: `orch pr --dry-run`.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Print `{"remote", "target", "dry_run", "plans": [{"plan", "branch", "base", "action",
        /// "number", "url", "base_before", "reason", "commands", "body"}]}` (with `--watch`: on
        /// one line, then each event of the review loop as a line `{"event": …}`).
        #[arg(long)]
        json: bool,
        /// Then watch the pull requests: review threads, change requests and failed checks
        /// become tasks of the plan ("Review round N"), run as `orch up` runs them, pushed and
        /// answered, until approved or handed to a person (`review_rounds`). Exit 0, or 5 when
        /// a pull request was handed to a person. Example: `orch pr --watch`.
        #[arg(long, conflicts_with = "dry_run")]
        watch: bool,
        /// With `--watch`: one poll (and the rounds it starts), then exit. Example:
        /// `orch pr --watch --once` from cron.
        #[arg(long, requires = "watch")]
        once: bool,
        /// With `--watch`: how often GitHub is asked, instead of `review_poll` ("30s").
        /// Example: `--poll 2m`.
        #[arg(long, requires = "watch", value_name = "DURATION", value_parser = parse_duration_arg)]
        poll: Option<std::time::Duration>,
    },
    /// Bring plans up to date with the plans they depend on: the tip of each upstream plan's
    /// branch is merged into the plan's branch, in its worktree, as a merge commit (also for a
    /// plan that is finished but not merged).
    ///
    /// Every merge of a plan is tried in memory first: a conflict changes nothing and lists the
    /// files. Upstream plans are synced first. The status file records the upstream commit each
    /// plan contains (`orchUpstream`). Refused while `orch up` runs in the repository.
    ///
    /// Exit codes: 0 ok (or nothing to do), 1 an operation failed, 2 invalid input, 4 refused
    /// (`orch up` running, uncommitted changes in a worktree), 5 a conflict (as `orch merge`).
    /// Example: `orch sync`, `orch sync api`, `orch sync --json | jq '.plans[].outcome'`.
    Sync {
        #[command(flatten)]
        target: Target,
        /// The plans to sync (names from plans.toml); every started plan that depends on another
        /// and is not merged when none is given. Example: `orch sync api`.
        #[arg(value_name = "PLAN")]
        plans: Vec<String>,
        /// Print `{"plans": [{"plan", "branch", "outcome" ("synced", "up_to_date",
        /// "conflict", "skipped", "error"), "merged" (`upstream_merged` events), "conflict",
        /// "reason"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Print the dependency graph (tasks, phase barriers, cross-plan gates).
    ///
    /// Example: `orch graph --format mermaid > graph.md`, `orch graph --format dot | dot -Tsvg`.
    Graph {
        #[command(flatten)]
        target: Target,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Start using orch in a repository: write a commented `plans.toml`, the prompt templates
    /// (`orch/templates/task.md`, `plan.md`), an example plan (`docs/plans/example.md`) and a
    /// `/.orch/` line in `.gitignore`.
    ///
    /// Never overwrites: if any of those files exists, nothing is written (exit 4).
    /// Example: `orch init`, `orch init --dir ../new-project`.
    Init {
        /// The directory to write into (created if missing) instead of the current one.
        /// Example: `--dir ../new-project`.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Write only a plans.toml that runs this Spec Kit tasks.md (`format = "speckit"`),
        /// inside the directory. Refused (exit 2) for a file that is not Spec Kit's or lies
        /// outside it, (exit 4) when a plans.toml is there already.
        /// Example: `orch init --from specs/001-login/tasks.md`.
        #[arg(long, value_name = "FILE")]
        from: Option<PathBuf>,
    },
    /// The 60-second tour: a new git repository with three plans, run by `orch up` with a
    /// built-in scripted agent; then each plan branch's commits, `orch merge` of the three into
    /// `main` in dependency order (a short `git log --graph`), the final status, and how to try
    /// `orch pr` against a local bare remote.
    ///
    /// Exits with `orch up`'s exit code, else `orch merge`'s. The repository is kept for you to
    /// look around.
    /// Example: `orch demo`, `orch demo /tmp/orch-tour`.
    Demo {
        /// Where to make the demo repository: a new or empty directory (a non-empty one is
        /// refused with exit 4). Default: a new directory under the system temp dir, printed.
        /// Example: `orch demo /tmp/orch-tour`.
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Stop after `orch up`: the plans stay unmerged (to try `orch pr` on them).
        /// Example: `orch demo --no-merge /tmp/orch-pr-tour`.
        #[arg(long)]
        no_merge: bool,
    },
    /// orch's own helpers, run by orch (hidden): [`super::internal::Internal`].
    #[command(flatten)]
    Internal(super::internal::Internal),
    /// Show the agent logs of a plan: without TASK, list its log files (size, time, newest
    /// last); with TASK, print that log.
    ///
    /// Logs live in `<log_dir>/<plan>/<task>.log` (`log_dir` = `.orch/logs` by default);
    /// `plan.log` is a plan-mode agent's, `setup.log` the setup command's.
    /// Example: `orch logs auth`, `orch logs auth 2.3`, `tail -F "$(orch logs auth 2.3 --path)"`.
    Logs {
        /// The plan's name in the manifest. Example: `auth`.
        plan: String,
        /// A task id (`2.3`, `V2` for a verification step), or `plan` / `setup`.
        /// Example: `orch logs auth 2.3`.
        task: Option<String>,
        /// Print only the path of the log (or of the plan's log directory without TASK), even
        /// before it is written. Example: `orch logs auth 2.3 --path`.
        #[arg(long)]
        path: bool,
        /// Print JSON: the list (`plan`, `dir`, `logs`: `name`, `path`, `size`, `modified`), or
        /// with TASK one object with the log's `text`. Example: `orch logs auth --json`.
        #[arg(long)]
        json: bool,
        /// Print the log's bytes as the agent wrote them. Without it, control characters other
        /// than newline and tab (terminal escape sequences, colours included, a carriage
        /// return) are shown escaped (`\u{1b}`), so that an agent's output cannot drive your
        /// terminal. Example: `orch logs auth 2.3 --raw | less -R`.
        #[arg(long, requires = "task", conflicts_with_all = ["json", "path"])]
        raw: bool,
        /// The manifest to use instead of the `plans.toml` found by walking up from the
        /// current directory. Example: `--manifest ../repo/plans.toml`.
        #[arg(long, short = 'm', value_name = "PATH")]
        manifest: Option<PathBuf>,
        /// Best of N: the log of attempt K of the task (its `ORCH_ATTEMPT`; each attempt of a
        /// round writes `<task>.a<K>.log`). Example: `orch logs auth 2.3 --attempt 2`.
        #[arg(long, value_name = "K", requires = "task")]
        attempt: Option<u32>,
        /// With TASK, only the log's last N bytes (`--json`: `text` holds them, `truncated`
        /// says whether it was cut). Example: `orch logs auth 2.3 --tail-bytes 4096`.
        #[arg(long, value_name = "N", requires = "task", conflicts_with_all = ["raw", "path"])]
        tail_bytes: Option<u64>,
    },
    /// A live full-screen view of the repository's run, and control of it.
    ///
    /// Shows each plan (progress, running, failed, waiting, cost, paused, merge state), the
    /// running agents (attempt, elapsed, time since their last output, their last line), the
    /// failures with their causes and the last events; `enter` opens a task's log (followed),
    /// diff stat and prompt. Keys (`?` lists them): ↑/↓ or j/k select, `p` pause/resume the
    /// selected plan, `r` retry the selected failed task, `x` stop the selected running task,
    /// `q` quit. It reads the status files, the logs and `<state_dir>/.events.jsonl`: any number
    /// can watch one run, it survives the run's restart, and with no run going it shows the last
    /// state. Respects `--color` and NO_COLOR. Exit codes: 0 on `q`, 2 not in a terminal or no plans.toml.
    /// Example: `orch top`.
    Top {
        /// The manifest to use instead of the `plans.toml` found by walking up from the
        /// current directory. Example: `--manifest ../repo/plans.toml`.
        #[arg(long, short = 'm', value_name = "PATH")]
        manifest: Option<PathBuf>,
    },
    /// Pause a plan: none of its tasks starts any more; its running agents go on.
    ///
    /// Recorded in the plan's status file (`orchPlanPaused`): a running `orch up` acts on it
    /// within a second, and a later one starts paused. A run whose only work left is in paused
    /// plans waits, saying so. Exit codes: 0 done (or already paused), 2 unknown plan.
    /// Example: `orch pause auth`.
    Pause(ControlPlan),
    /// Resume a paused plan: its tasks start again. Exit codes: 0, 2 unknown plan.
    /// Example: `orch resume auth`.
    Resume(ControlPlan),
    /// Put a failed task back to pending: it runs again with a fresh set of retries (its attempt
    /// numbers go on counting), also one stopped with `orch stop`.
    ///
    /// Exit codes: 0, 2 unknown plan or task, 4 the task is not failed.
    /// Example: `orch retry auth 2.3`.
    Retry(ControlTask),
    /// Stop a running task's agent: the attempt fails with the cause `stopped`, and the task is
    /// not retried until someone runs `orch retry`.
    ///
    /// A running `orch up` stops the agent within a second; without one, orch sends its process
    /// group SIGTERM. A failed task waiting for its retry is stopped too (no retry comes). In a
    /// plan-mode plan, the plan's agent at work on the task is the one stopped.
    /// Exit codes: 0, 2 unknown plan or task, 4 the task is neither running nor failed (or is
    /// stopped already). Example: `orch stop auth 2.3`.
    Stop(ControlTask),
    /// Answer the question a task's agent asked (`orch task ask`): the task is pending again,
    /// and its next attempt's prompt holds the question and the answer. Kept in the status file
    /// (`orchAnswers`).
    ///
    /// A running `orch up` runs the task again within a second; without one, the next `orch
    /// up` does. Exit codes: 0, 2 unknown plan or task (or an empty answer, or one longer than
    /// 8 KiB), 4 the task is not waiting for an answer.
    /// Example: `orch answer auth 2.3 "use PostgreSQL"`.
    Answer {
        #[command(flatten)]
        task: ControlTask,
        /// The answer, as the agent will read it.
        #[arg(value_name = "TEXT")]
        text: String,
    },
    /// Tell a task something: the message is kept in its status file (`orchMessages`) and
    /// every next attempt's prompt holds it. A running attempt whose agent reads messages
    /// (`input = "lines"`) gets it at once, as one line on its stdin. With `--restart`, a
    /// running attempt is stopped now and the next one starts with the message.
    ///
    /// Prints `delivered` or `kept for the next attempt`. Exit codes: 0, 2 unknown plan or task (or an empty
    /// message, or one longer than 8 KiB), 4 the task is completed or skipped (no attempt will
    /// read it; nothing is kept). Example: `orch say auth 2.3 "keep the old API"`.
    Say {
        #[command(flatten)]
        task: ControlTask,
        /// The message, as the agent will read it.
        #[arg(value_name = "TEXT")]
        text: String,
        /// Stop the running attempt now; the next one starts with the message.
        #[arg(long)]
        restart: bool,
    },
    /// Print a shell completion script for orch on stdout: subcommands, options and their
    /// values complete on Tab.
    #[command(after_help = "Examples:
  orch completions bash > ~/.local/share/bash-completion/completions/orch
  orch completions zsh > ~/.zfunc/_orch    # with fpath+=(~/.zfunc) before compinit
  orch completions fish > ~/.config/fish/completions/orch.fish")]
    Completions {
        /// The shell to write the script for.
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Print orch's manual page (roff) on stdout: every command with its options; with COMMAND,
    /// that command's page (`orch-merge(1)`).
    #[command(after_help = "Examples:
  orch man | man -l -
  orch man merge | man -l -
  orch man > ~/.local/share/man/man1/orch.1")]
    Man {
        /// A subcommand whose page to print (`merge`, `task`); orch's own page without it.
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
    /// Hand a plan that conflicts with the target to its `resolve` agent now: orch writes git's
    /// merge of the target into the plan branch with the conflict markers into a resolution
    /// worktree of its own (`<worktree_root>/.resolve-<plan>`), runs the agent there confined,
    /// and commits the merge on the plan branch only when no marker is left, only the conflicted
    /// files (and those the agent's explanation names) changed, and the plan's `check` and
    /// `verify` pass. Otherwise the plan branch does not move and the attempt is saved under
    /// `refs/orch/attempts/<plan>/resolve/<n>`. The target never moves: `orch merge` lands it.
    ///
    /// Exit codes: 0 resolved (or nothing to resolve), 2 invalid input (unknown plan, no
    /// `resolve` agent), 4 refused (`orch up`, another `orch merge` or `orch resolve` runs), 5 not
    /// resolved,
    /// 130 interrupted. Example: `orch resolve api`, `orch resolve api --dry-run`.
    Resolve {
        #[command(flatten)]
        target: Target,
        /// The plan to resolve (a name from plans.toml). Example: `orch resolve api`.
        #[arg(value_name = "PLAN")]
        name: String,
        /// Print the prompt the agent would get (the conflicted files and hunks, the commits of
        /// each side, what done means); change nothing. Example: `orch resolve api --dry-run`.
        #[arg(long, short = 'n')]
        dry_run: bool,
        /// Print one JSON object: `plan`, `result` (`resolved`, `resolve_failed`, `clean`),
        /// `agent`, `files`, `commit`, `reason`, `saved`; with `--dry-run`, `plan` and `prompt`.
        #[arg(long)]
        json: bool,
    },
    /// Print what orch learnt from earlier runs: every settled attempt of `orch up` (plan, task,
    /// agent and model, duration, tokens, cost, outcome, attempt, `(est: …)`), kept in
    /// `<state_dir>/.history.jsonl` across runs and `orch clean` (the newest 10,000 to 20,000).
    ///
    /// The forecasts of `orch status`, `orch top` and `orch simulate --history` come from it.
    /// `--backtest` replays it in time order, forecasting each attempt from what was known
    /// before it, and prints how often the actual durations fell under p50 and p90 (and the same
    /// for plans' remaining time when half their tasks were done): about 50 % and 90 % when the
    /// ranges are calibrated. Lines that are not records are skipped with a note. Exit codes: 0 ok, 2
    /// invalid input (no manifest).
    #[command(after_help = "Examples:
  orch history
  orch history --json | jq '.records[] | select(.outcome == \"failed\")'
  orch history --backtest
  orch history --profile
  orch history --profile 3 --json")]
    History {
        #[command(flatten)]
        target: Target,
        /// Print one JSON object: `records` (as stored), `skipped` (notes), `summary` (per plan
        /// and agent: attempts, failed, p50 and p90 seconds) and, with `--backtest`, `backtest`.
        #[arg(long)]
        json: bool,
        /// Replay the history and print how calibrated its forecasts were.
        #[arg(long)]
        backtest: bool,
        /// Records listed in the text (the newest; default 20). The JSON has them all.
        #[arg(long, value_name = "N", default_value_t = 20)]
        last: usize,
        /// Where each run's wall time went, from `<state_dir>/.events.jsonl`: agents, checks,
        /// orch's own time (scheduling, worktrees, commits, merges), waiting for a slot, a limit,
        /// a backoff or a person; per plan and per task kind; orch's overhead as a percentage.
        /// Example: `orch history --profile`, `orch history --profile 2 --json`.
        #[arg(long)]
        profile: bool,
        /// With `--profile`: only run RUN (1 for the oldest in the file; `last` for the newest).
        #[arg(value_name = "RUN", requires = "profile")]
        run: Option<String>,
    },
}
