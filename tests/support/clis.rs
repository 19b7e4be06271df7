//! The real agent CLIs (Claude Code, Codex, Gemini CLI, aider, opencode, Qwen Code, GitHub
//! Copilot CLI) for the end-to-end tests: where they are installed
//! (`ORCH_TEST_CLIS`, by `.ci/agent-clis`; a skip unless `ORCH_REQUIRE_AGENT_CLIS=1`), the
//! environment that points them at the fake model API ([`super::fake_api`]) with homes of
//! their own, and the agents' logs for a failure message.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::Repo;
pub use super::fake_api::env::{
    QWEN_SETTINGS, chat_clients_env, client_env, codex_config, opencode_config,
};
use super::fake_api::{Behaviour, FakeApi};
use super::{code_out_err, wait_within};
use serde_json::Value;

/// One CLI call against the fake API takes about two seconds; a whole run a few of them.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// The installed CLIs, or `None` (skip) when they are not installed and CI does not require
/// them.
pub fn clis() -> Option<PathBuf> {
    clis_with("claude")
}

/// The installed CLIs when they include `program` (`DIR/bin/PROGRAM`), else as [`clis`].
pub fn clis_with(program: &str) -> Option<PathBuf> {
    let required = std::env::var("ORCH_REQUIRE_AGENT_CLIS").is_ok_and(|v| v == "1");
    match std::env::var_os("ORCH_TEST_CLIS") {
        Some(dir) if Path::new(&dir).join("bin").join(program).exists() => Some(PathBuf::from(dir)),
        other => {
            let why = match other {
                Some(dir) => format!(
                    "ORCH_TEST_CLIS={} holds no bin/{program}",
                    Path::new(&dir).display()
                ),
                None => "ORCH_TEST_CLIS is not set".to_string(),
            };
            assert!(
                !required,
                "{why}, and ORCH_REQUIRE_AGENT_CLIS=1: install them with `.ci/agent-clis` and export ORCH_TEST_CLIS=<the directory it prints>"
            );
            eprintln!("skipped: {why} (install with .ci/agent-clis)");
            None
        }
    }
}

/// Everything under the run's log directory, for a failure message.
pub fn logs(repo: &Repo) -> String {
    let mut out = String::new();
    let mut stack = vec![repo.root().join(".orch")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && !p.ends_with("worktrees") {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(6000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!("--- {}\n{tail}\n", p.display()));
            }
        }
    }
    out
}

/// The environment of a fresh HOME that holds only an API key, as in CI or a container: no
/// client has a state directory there, each gets its endpoint and key from the environment.
/// (Gemini CLI with `GOOGLE_GEMINI_BASE_URL` alone picks a "gateway" login that headless mode
/// refuses: its API-key login is chosen in a system settings file outside HOME, in `system`,
/// which must not lie under a directory others can write, such as `/tmp`: Gemini CLI skips it
/// there.)
pub fn fresh_home_env(cmd: &mut Command, clis: &Path, api: &FakeApi, home: &Path, system: &Path) {
    let path = std::env::join_paths(std::iter::once(clis.join("bin")).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    std::fs::create_dir_all(system).expect("system settings dir");
    let gemini_system = system.join("gemini-settings.json");
    std::fs::write(
        &gemini_system,
        r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}, "privacy": {"usageStatisticsEnabled": false}}"#,
    )
    .expect("gemini system settings");
    chat_clients_env(cmd, api);
    cmd.env("PATH", path)
        .env("HOME", home)
        // opencode: its endpoint from the variable alone.
        .env("OPENCODE_CONFIG_CONTENT", opencode_config(api))
        .env("ANTHROPIC_BASE_URL", api.base_url())
        .env("ANTHROPIC_API_KEY", "sk-ant-fake")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CODEX_API_KEY", "sk-fake")
        .env("GEMINI_API_KEY", "fake-gemini-key")
        .env("GOOGLE_GEMINI_BASE_URL", api.base_url())
        .env("GEMINI_CLI_SYSTEM_SETTINGS_PATH", &gemini_system)
        .env("OPENAI_API_BASE", format!("{}/v1", api.base_url()))
        .env("OPENAI_API_KEY", "sk-fake")
        .env("AIDER_MODEL", "openai/fake-model")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True");
}

/// Where the system settings of [`fresh_home_env`] are made: Gemini CLI skips a settings file
/// with a directory others can write above it (`/tmp`), so not the target directory when the
/// clone lies under `/tmp` (as a CI clone may): `~/.cache/orch-tests` of the user running the
/// tests, else the target directory.
fn system_settings_parent() -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let open_to_others = |p: &Path| {
        p.ancestors()
            .any(|a| std::fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o022 != 0))
    };
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if !open_to_others(&target) {
        return target;
    }
    match std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/orch-tests")) {
        Some(dir) if std::fs::create_dir_all(&dir).is_ok() && !open_to_others(&dir) => dir,
        _ => target,
    }
}

/// What [`up_in_fresh_home`] ran and left.
pub struct FreshRun {
    pub repo: Repo,
    pub code: i32,
    pub out: String,
    pub err: String,
    /// What HOME holds afterwards that it did not before.
    pub new_in_home: Vec<PathBuf>,
    pub api: FakeApi,
}

/// The clients [`up_in_fresh_home`] has run the repository's tests first.
pub const RUNS_TESTS_CONFINED: [&str; 6] =
    ["claude", "codex", "gemini", "opencode", "qwen", "copilot"];

/// `orch up` of a one-task plan ("Create `alpha.txt`") through the preset `agent`, confined
/// (`sandbox = "on"`), in a fresh HOME holding nothing ([`fresh_home_env`]); `None` when the
/// CLIs are not installed. Returns the repository, orch's exit code, stdout, stderr, what
/// HOME holds afterwards, and the fake API (what the model saw).
pub fn up_in_fresh_home(agent: &str) -> Option<FreshRun> {
    let clis = clis_with(agent)?;
    // The clients with a shell tool the preset lets run confined first run the repository's
    // tests (`run-tests.sh` writes `tests-ran.txt`, which the task's commit then holds).
    let behaviour = if RUNS_TESTS_CONFINED.contains(&agent) {
        super::fake_api::Behaviour::RunsFirst("sh run-tests.sh".into())
    } else {
        super::fake_api::Behaviour::Normal
    };
    let api = FakeApi::start(behaviour);
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write(
        "run-tests.sh",
        "echo passed > tests-ran.txt\necho 'all tests passed'\n",
    );
    repo.write(
        "docs/plans/one.md",
        "# One file\n\n## Phase 1: Files\n- [ ] 1.1 Create `alpha.txt`\n",
    );
    // Codex takes its endpoint from its configuration only (no variable names one): the
    // agent's own argv gives it (`-c`), as a user without a `config.toml` would.
    let table = if agent == "codex" {
        let mut argv: Vec<String> = ["codex", "exec"].iter().map(|a| a.to_string()).collect();
        for c in [
            "model=\"gpt-5.1-codex\"".to_string(),
            "model_provider=\"fake\"".to_string(),
            format!(
                "model_providers.fake={{ name = \"fake\", base_url = \"{}/v1\", env_key = \"CODEX_API_KEY\", wire_api = \"responses\", request_max_retries = 0, stream_max_retries = 0 }}",
                api.base_url()
            ),
        ] {
            argv.push("-c".to_string());
            argv.push(c);
        }
        argv.extend(
            [
                "--sandbox",
                "danger-full-access",
                "--json",
                "--",
                "{{ prompt }}",
            ]
            .iter()
            .map(|a| a.to_string()),
        );
        format!(
            "[agents.codex]\ncommand = {}\nreport = \"orch\"\n\n",
            super::toml_array(&argv)
        )
    } else {
        String::new()
    };
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{agent}\"\nretries = 0\nsandbox = \"on\"\n\n{table}\
             [[plan]]\nname = \"one\"\nfile = \"docs/plans/one.md\"\n"
        ),
    );
    repo.commit_all("plans");
    let before = home_entries(repo.home());
    let system = tempfile::tempdir_in(system_settings_parent()).expect("system dir");
    let mut cmd = repo.orch(&["up", "--json"]);
    cmd.env_remove("ORCH_SANDBOX");
    fresh_home_env(&mut cmd, &clis, &api, repo.home(), system.path());
    let (code, out, err) = super::code_out_err(&super::wait_within(
        cmd.spawn().expect("spawn orch up"),
        RUN_TIMEOUT,
        "orch up",
    ));
    let err = format!("{err}\nagent logs:\n{}", logs(&repo));
    let after: Vec<PathBuf> = home_entries(repo.home())
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    Some(FreshRun {
        repo,
        code,
        out,
        err,
        new_in_home: after,
        api,
    })
}

/// The entries of a HOME, one level deep.
fn home_entries(home: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(home)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// One CLI run, by the preset's argv with the prompt of a one-task plan, straight against the
/// fake API (no orch): its stdout lines, parsed.
pub fn client_lines(
    clis: &Path,
    agent: &str,
    behaviour: Behaviour,
    extra_env: &[(&str, &str)],
) -> (i32, Vec<Value>, String) {
    let r = client_run(clis, agent, behaviour, extra_env);
    (r.code, r.lines, r.ctx)
}

/// One run of a client straight against the fake API ([`client_run`]).
pub struct ClientRun {
    pub code: i32,
    /// Its stdout lines, parsed.
    pub lines: Vec<Value>,
    /// Its exit code and output, for a failure message.
    pub ctx: String,
    /// What orch reads of it: its output parsed, the usage file it wrote.
    pub read: orch::agent_output::AgentOutput,
    /// The model calls the fake API answered.
    pub calls: usize,
}

/// [`client_lines`], also with what orch reads of the run: its output parsed by
/// `orch::agent_output::parse` and the usage file the client wrote, if any.
pub fn client_run(
    clis: &Path,
    agent: &str,
    behaviour: Behaviour,
    extra_env: &[(&str, &str)],
) -> ClientRun {
    let api = FakeApi::start(behaviour);
    let home = tempfile::tempdir().expect("home");
    let work = tempfile::tempdir().expect("work");
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(work.path())
            .env("HOME", home.path())
            .stdout(Stdio::null())
            .status()
            .expect("git")
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    let status_dir = home.path().join("state");
    std::fs::create_dir_all(&status_dir).expect("state");
    let prompt = format!(
        "## Task 1.1: Create `alpha.txt`\n\n- Work only inside `{}` (branch `main`), your current directory.\n\n\
         When finished, run exactly one of these commands, as written:\n\n    true task done 1.1 --note \"what you changed, in one line\"\n",
        work.path().display()
    );
    let presets = orch::manifest::presets();
    let usage_file = home.path().join("usage.json");
    let argv: Vec<String> = presets[agent]
        .command
        .iter()
        .map(|a| {
            orch::manifest::render_template(a, |v| match v {
                "prompt" => prompt.clone(),
                "orch" => "true".to_string(),
                "orch_dir" => "/usr/bin".to_string(),
                "usage_file" => usage_file.display().to_string(),
                "status_file" => status_dir.join("status.json").display().to_string(),
                _ => String::new(),
            })
            .expect("render")
        })
        .collect();
    // opencode's preset reads the prompt on stdin.
    let prompt_file = home.path().join("prompt.md");
    std::fs::write(&prompt_file, &prompt).expect("prompt file");
    let stdin = if presets[agent].stdin == orch::manifest::StdinMode::Prompt {
        Stdio::from(std::fs::File::open(&prompt_file).expect("prompt"))
    } else {
        Stdio::null()
    };
    let mut cmd = Command::new(clis.join("bin").join(&argv[0]));
    cmd.args(&argv[1..])
        .current_dir(work.path())
        .env_clear()
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    client_env(&mut cmd, clis, &api, home.path());
    // The variables orch sets for the clients it knows (opencode's permission rules).
    if let Some(cli) = orch::manifest::KnownCli::of(&argv) {
        cmd.envs(cli.env(Some(false), "true", |_| None));
    }
    cmd.envs(extra_env.iter().copied());
    let (code, out, err) = code_out_err(&wait_within(
        cmd.spawn().expect("spawn the CLI"),
        RUN_TIMEOUT,
        agent,
    ));
    let lines = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let mut read = orch::agent_output::parse(&format!("{out}\n{err}"), chrono::Utc::now());
    if let Some(u) = orch::agent_output::read_usage_file(&usage_file) {
        read.usage = Some(u);
    }
    ClientRun {
        code,
        lines,
        ctx: format!("exit {code}\nstdout:\n{out}\nstderr:\n{err}"),
        read,
        calls: api.model_calls(),
    }
}

/// Keeps a CLI's output as a fixture for the parsers of its JSON (only with
/// ORCH_UPDATE_CLIENT_FIXTURES=1), with the run's own paths and ids left as they were.
pub fn keep_fixture(agent: &str, name: &str, lines: &[Value]) {
    if std::env::var("ORCH_UPDATE_CLIENT_FIXTURES").is_ok_and(|v| v == "1") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/clients")
            .join(agent);
        std::fs::create_dir_all(&dir).expect("fixtures dir");
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.join(format!("{name}.jsonl")), text).expect("write fixture");
    }
}

/// Records, with the fixtures (`ORCH_UPDATE_CLIENT_FIXTURES=1`), how many model calls a run of
/// `agent` made (`<name>.calls`).
pub fn keep_calls(agent: &str, name: &str, calls: usize) {
    if std::env::var("ORCH_UPDATE_CLIENT_FIXTURES").is_ok_and(|v| v == "1") {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/clients")
            .join(agent);
        std::fs::create_dir_all(&dir).expect("fixtures dir");
        std::fs::write(dir.join(format!("{name}.calls")), format!("{calls}\n"))
            .expect("write fixture");
    }
}

/// The model calls a run of `agent` made when its fixtures were recorded ([`keep_calls`]).
pub fn fixture_calls(agent: &str, name: &str) -> usize {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clients")
        .join(agent)
        .join(format!("{name}.calls"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (made with the fixtures: ORCH_UPDATE_CLIENT_FIXTURES=1 cargo test --test all agents_real_chat -- --ignored)",
            path.display()
        )
    });
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A plan of one task.
pub const ONE: &str = "# One\n\n## Phase 1: Files\n- [ ] 1.1 Create `alpha.txt`\n";
/// A plan of two tasks, the second after the first.
pub const TWO: &str = "# Two\n\n## Phase 1: Files\n\
- [ ] 1.1 Create `alpha.txt`\n\
- [ ] 1.2 Create `beta.txt` (depends: 1.1)\n";

/// A repository with plan `p` (`plan`) run by the preset `agent`, with `defaults` lines.
pub fn repo_with(agent: &str, plan: &str, defaults: &str) -> Repo {
    let repo = Repo::builder().timeout(RUN_TIMEOUT).build();
    repo.write("docs/plans/p.md", plan);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"{agent}\"\n{defaults}\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
        ),
    );
    repo.commit_all("plans");
    repo
}
