//! The `ORCH_*` environment variables: every name is defined here once. `orch up` sets most of
//! them for the commands it starts (agents, setup commands); `orch merge` sets the merge ones for
//! its verify command; orch itself reads a few (the agents' side of `orch next` / `orch task`,
//! and `ORCH_WATCH`).

/// Set by `orch up` for agents and setup commands: the plan's name. Read by `orch next`,
/// `orch task` and `orch status` to select the plan when `--plan` is not given. Also set by
/// `orch merge` for its verify command.
pub(crate) const ORCH_PLAN: &str = "ORCH_PLAN";

/// Set by `orch up` for agents: the task id, empty for a plan-mode agent. Read back from
/// `/proc/<pid>/environ` to find the agents of an earlier supervisor.
pub(crate) const ORCH_TASK: &str = "ORCH_TASK";

/// Set by `orch up` for agents and setup commands: the plan's worktree (a task's own worktree with
/// `parallel_tasks` > 1), also the working directory. Set by `orch merge` for its verify command:
/// the staging worktree. Read by `orch task done` (with [`ORCH_COMMIT_ON_DONE`]) and the demo's
/// agent.
pub(crate) const ORCH_WORKTREE: &str = "ORCH_WORKTREE";

/// Set by `orch up` for agents: the plan's status file in the main repository's state directory.
/// Read by `orch next` / `orch task` / `orch status` as the status file of the selected plan, and
/// from `/proc/<pid>/environ` to find the agents of an earlier supervisor.
pub(crate) const ORCH_STATUS_FILE: &str = "ORCH_STATUS_FILE";

/// Set by `orch up` for agents: the orch executable to call back (`"$ORCH_BIN" task done ID`).
pub(crate) const ORCH_BIN: &str = "ORCH_BIN";

/// Set by `orch up` for agents: the manifest, so `orch next` / `orch task` inside a worktree find
/// the right one. Read by those commands when `--manifest` is not given.
pub(crate) const ORCH_MANIFEST: &str = "ORCH_MANIFEST";

/// Set by `orch up` for agents: the attempt number, 1 for the first attempt.
pub(crate) const ORCH_ATTEMPT: &str = "ORCH_ATTEMPT";

/// Set by `orch up` for agents: the file holding the agent's prompt.
pub(crate) const ORCH_PROMPT_FILE: &str = "ORCH_PROMPT_FILE";

/// Read by `orch up`: the `sandbox` of agents that plans.toml gives none (neither in
/// `[defaults]` nor in their table): `auto`, `on` or `off`; unset or another value: `auto`.
pub(crate) const ORCH_SANDBOX: &str = "ORCH_SANDBOX";

/// Read by `orch up`: the `network` of agents that plans.toml gives none (neither in
/// `[defaults]` nor in their table): `confined`, `open` or `none`; unset: `confined` where the
/// machine can confine.
pub(crate) const ORCH_NETWORK: &str = "ORCH_NETWORK";

/// Set by `orch up` for agents: the attempt's own report directory
/// (`<state_dir>/.reports/<plan>/<unit>.<attempt>/`, in the run's state directory, the home
/// repository's, for a plan of any repository: [`crate::status::report`]), the only place of
/// the state directory a confined agent can write. `orch task done|fail|skip|start|reset` run
/// with it set hands its report to the supervisor there (the one whose lock is in that state
/// directory) and waits for the answer, instead of writing the status file (which the agent
/// cannot write); never to a supervisor found otherwise.
pub(crate) const ORCH_REPORT_DIR: &str = "ORCH_REPORT_DIR";

/// Formerly set to `1` by `orch up` for plan-mode agents (no longer: the supervisor commits a
/// plan-mode agent's reported task itself). Still read: set by hand, outside `orch up`, `orch task
/// done` commits the worktree ([`ORCH_WORKTREE`]) before recording the task.
pub(crate) const ORCH_COMMIT_ON_DONE: &str = "ORCH_COMMIT_ON_DONE";

/// Set by `orch up` for agents and setup commands: the first of a block of `ports` ports
/// (`[defaults]`, default 10) that no other worktree existing at the same time has; the same
/// value for a worktree's setup and its agents ([`crate::ports`]).
pub(crate) const ORCH_PORT: &str = "ORCH_PORT";

/// Set by `orch up` with [`ORCH_PORT`]: the size of that block (`ports`), the ports from
/// `ORCH_PORT` on that are the worktree's.
pub(crate) const ORCH_PORTS: &str = "ORCH_PORTS";

/// Read by `orch up` from its own environment: `poll` turns the status-file watcher off and
/// relies on the periodic re-read alone (network filesystems deliver no events).
pub(crate) const ORCH_WATCH: &str = "ORCH_WATCH";

/// Read by `orch up` from its own environment: the first pause, in milliseconds, of an agent at a
/// usage limit whose client named no reset time (default 60 s; tests set it short).
pub(crate) const ORCH_LIMIT_BACKOFF_MS: &str = "ORCH_LIMIT_BACKOFF_MS";

/// Not orch's own: Claude Code's count of retries of a failed API call (default 10, with a
/// backoff that reaches minutes). `orch up` sets it to [`CLAUDE_RETRIES`] for an agent that runs
/// the `claude` CLI, unless orch's own environment sets it: orch does the waiting itself (a
/// usage limit pauses the agent until its reset, a bad API key stops the run at once, a busy
/// API is waited out with the limit backoff), where Claude Code would retry a 401 ten times
/// over about three minutes.
pub(crate) const CLAUDE_CODE_MAX_RETRIES: &str = "CLAUDE_CODE_MAX_RETRIES";

/// The value of [`CLAUDE_CODE_MAX_RETRIES`] orch sets.
pub(crate) const CLAUDE_RETRIES: &str = "0";

/// Set by `orch merge` for its verify command: the merge target (a branch name).
pub(crate) const ORCH_TARGET: &str = "ORCH_TARGET";

/// Set by `orch merge` for its verify command: the candidate merge commit being verified.
pub(crate) const ORCH_MERGE_COMMIT: &str = "ORCH_MERGE_COMMIT";

/// Set for a resolving agent (`resolve`): the file where it names the files it had to change
/// beyond the conflicted ones, one per line (outside its worktree, in a directory orch made).
pub(crate) const ORCH_RESOLVE_NOTES: &str = "ORCH_RESOLVE_NOTES";

/// Not orch's own: variables of the supervisor's own git environment that must not leak into an agent (or a
/// verify command, or a batch job): it works in its worktree, not in whatever repository orch
/// was started from.
pub(crate) const GIT_ENV: [&str; 7] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
];

/// Not orch's own: the variables that hand a process the user's agents and buses (ssh-agent,
/// gpg-agent, the session D-Bus, the desktop's keyring, a Kerberos ticket cache): with them an agent could sign, log in
/// or unlock as the user. Removed from every agent's and check's environment, confined or not,
/// unless `pass_env` (`[defaults]`, `[agents.NAME]`) names them.
pub(crate) const AGENT_SOCKETS: [&str; 7] = [
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "GNUPGHOME",
    "DBUS_SESSION_BUS_ADDRESS",
    "GNOME_KEYRING_CONTROL",
    "KRB5CCNAME",
];

/// Not orch's own names, but orch's own credentials: the tokens `gh` reads, which `orch pr`
/// (and `orch up --pr`, the review loop) act with on GitHub. With one an agent could push,
/// open, approve or merge pull requests as the user. Removed from every agent's, check's and
/// `verify`'s environment, local, on a host, in a Slurm job or a container, unless `pass_env`
/// names them (`verify` never gets them).
pub(crate) const ORCH_CREDENTIALS: [&str; 4] = [
    "GH_TOKEN",
    "GITHUB_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
];

/// What orch withholds from agents and their checks unless `pass_env` names it: the agent
/// sockets ([`AGENT_SOCKETS`]) and orch's own credentials ([`ORCH_CREDENTIALS`]); the only
/// names `pass_env` takes.
pub(crate) fn withheld() -> impl Iterator<Item = &'static str> {
    AGENT_SOCKETS.iter().chain(ORCH_CREDENTIALS.iter()).copied()
}

/// Whether `name` is withheld from an agent that keeps `pass` ([`withheld`] less `pass_env`).
pub(crate) fn is_withheld(name: &str, pass: &[String]) -> bool {
    withheld().any(|w| w == name) && !pass.iter().any(|p| p == name)
}

/// The variables that put a process inside one agent's run (its plan, task, worktree, status
/// file, manifest and orch executable). An `orch` started for another purpose (the demo's own
/// run) must not inherit them, or it would act on the agent's plan.
pub(crate) const AGENT_CONTEXT: [&str; 7] = [
    ORCH_MANIFEST,
    ORCH_REPORT_DIR,
    ORCH_PLAN,
    ORCH_TASK,
    ORCH_WORKTREE,
    ORCH_STATUS_FILE,
    ORCH_BIN,
];

/// What to remove from the environment of an `orch` started as a run of its own: the git
/// variables that point at another repository ([`GIT_ENV`]) and an agent's context
/// ([`AGENT_CONTEXT`]).
pub(crate) fn fresh_run_removals() -> impl Iterator<Item = &'static str> {
    GIT_ENV.iter().chain(AGENT_CONTEXT.iter()).copied()
}

/// Not orch's own: OpenTelemetry's variables that orch's environment may hold and that no
/// command orch starts inherits: the exporter's headers (a collector's API key), and the trace
/// context of whatever started orch. When the run exports (`src/telemetry/`), an attempt gets
/// `TRACEPARENT` and `OTEL_RESOURCE_ATTRIBUTES` of its own. The rule is [`otel_withheld`]'s
/// (every signal's headers, client key and certificate, whatever the case of their names);
/// these are its names in the standard's spelling.
/// A command orch starts, of `program`: what it inherits of orch's environment holds none of
/// a collector's credentials nor the outer trace context ([`scrub`]). Every command orch starts
/// is made here (`tests/conventions.rs`), so that the rule holds for the ones to come.
pub(crate) fn command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    withhold_credentials(&mut cmd);
    cmd
}

/// The program a command orch started replaces itself with (`exec`: the sandbox's wrapper, git's
/// confined runner, a service's wait): its environment is the one orch already decided for that
/// command, handed on as it is (the attempt's own `TRACEPARENT` with it).
pub(crate) fn continuing(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    std::process::Command::new(program)
}

/// orch's own executable run for one of its own commands, as the person who started this orch
/// would run it (`orch up` started by `orch mcp`, the verbs `orch serve` and `orch mcp` answer
/// with): its environment whole, a collector's credentials with it, which that orch withholds
/// from what it starts in turn (red team 11: an `orch up` started by `orch mcp` exported
/// without its key). Never for anything but orch's own executable.
pub(crate) fn orch_itself(orch: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    tokio::process::Command::new(orch)
}

/// [`command`] for tokio.
pub(crate) fn tokio_command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    withhold_credentials(cmd.as_std_mut());
    cmd
}

/// OpenTelemetry's variables of orch's environment as `cmd` gets them: a collector's
/// credentials and the outer trace context removed, an exporter's address without its user
/// information ([`otel_inherited`]). For the commands that start an attempt or a check, whose
/// trace context orch gives them itself.
pub(crate) fn scrub(cmd: &mut std::process::Command) {
    apply(cmd, otel_inherited());
}

/// [`scrub`] without touching the trace context: what every command orch starts gets
/// ([`command`]). A process orch started for an attempt (its keeper, its wrapper) hands the
/// attempt's own `TRACEPARENT` on to what it starts.
fn withhold_credentials(cmd: &mut std::process::Command) {
    let credentials = otel_inherited().into_iter().filter(|(name, _)| {
        name.to_str().is_some_and(|n| {
            !matches!(
                n.to_ascii_uppercase().as_str(),
                "TRACEPARENT" | "TRACESTATE" | "OTEL_RESOURCE_ATTRIBUTES"
            )
        })
    });
    apply(cmd, credentials.collect());
}

fn apply(cmd: &mut std::process::Command, changes: Vec<(std::ffi::OsString, Option<String>)>) {
    for (name, value) in changes {
        match value {
            None => cmd.env_remove(name),
            Some(v) => cmd.env(name, v),
        };
    }
}

#[cfg(test)]
const OTEL_NOT_INHERITED: &[&str] = &[
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "TRACEPARENT",
    "TRACESTATE",
    "OTEL_RESOURCE_ATTRIBUTES",
];

/// Whether the variable `name` is one of OpenTelemetry's that no command orch starts inherits
/// ([`OTEL_NOT_INHERITED`]), in any case: the outer trace context (`TRACEPARENT`, `TRACESTATE`,
/// `OTEL_RESOURCE_ATTRIBUTES`), and a collector's credentials, any signal's (`OTEL_EXPORTER_OTLP_`
/// `…HEADERS`, `…CLIENT_KEY`, `…CLIENT_CERTIFICATE`).
pub(crate) fn otel_withheld(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    matches!(
        up.as_str(),
        "TRACEPARENT" | "TRACESTATE" | "OTEL_RESOURCE_ATTRIBUTES"
    ) || (up.starts_with("OTEL_EXPORTER_OTLP_")
        && ["HEADERS", "CLIENT_KEY", "CLIENT_CERTIFICATE"]
            .iter()
            .any(|end| up.ends_with(end)))
}

/// `url` as a command orch starts gets it ([`without_credentials`]), if orch can read it as an
/// `http://` or `https://` address (the scheme in any case) with a host and nothing a parser
/// could read otherwise (a backslash, a space, a control character); `None` otherwise.
fn readable_address(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let known = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let odd = url
        .chars()
        .any(|c| c == '\\' || c.is_whitespace() || c.is_control());
    let host = rest.split(['/', '?', '#']).next()?.rsplit('@').next()?;
    (known && !odd && !host.is_empty()).then(|| without_credentials(url))
}

/// `url` as a command orch starts gets it: without its user information
/// (`http://user:key@host:4318/x` → `http://host:4318/x`), its query and its fragment
/// (`…/v1/traces?api_key=K` → `…/v1/traces`): a collector's credential, wherever the address
/// holds it, stays with orch. Anything that is not an address as it is.
pub(crate) fn without_credentials(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..authority_end],
        None => &rest[..authority_end],
    };
    let after = &rest[authority_end..];
    let path = &after[..after.find(['?', '#']).unwrap_or(after.len())];
    format!("{scheme}://{host}{path}")
}

/// `url` without its user information, as orch keeps an address it sends the user information
/// of as a header. Anything that is not an address as it is.
pub(crate) fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// `text` with the user information, query and fragment of every address in it removed, as
/// orch says it on the console and in its logs (a key in any of them stays orch's: red team 12
/// read `?api_key=` in a failed export's note).
pub(crate) fn without_userinfo_in(text: &str) -> String {
    let end_of = |s: &str| {
        s.find(|c: char| matches!(c, '`' | '\'' | '"' | ')') || c.is_whitespace())
            .unwrap_or(s.len())
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = end_of(after);
        let address = &after[..end];
        let authority_end = address.find(['/', '?', '#']).unwrap_or(address.len());
        let authority = &address[..authority_end];
        out.push_str(
            authority
                .rfind('@')
                .map_or(authority, |i| &authority[i + 1..]),
        );
        let tail = &address[authority_end..];
        out.push_str(&tail[..tail.find(['?', '#']).unwrap_or(tail.len())]);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// What OpenTelemetry's variables of orch's own environment become for a command orch starts:
/// `(name, None)` removed ([`otel_withheld`]), `(name, Some(value))` an exporter's address
/// (`OTEL_EXPORTER_OTLP_…`, any case) given without its credentials ([`without_credentials`]).
pub(crate) fn otel_inherited() -> Vec<(std::ffi::OsString, Option<String>)> {
    let mut out = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(n) = name.to_str() else {
            continue;
        };
        if otel_withheld(n) {
            out.push((name, None));
        } else if n.to_ascii_uppercase().starts_with("OTEL_EXPORTER_OTLP_") {
            // An address is given only as orch reads one (`http://` or `https://`, any case,
            // without a backslash or a control character), without its credentials; one orch
            // cannot read (`http:\\u:KEY@h`, `u:KEY@h:4317`) is withheld whole (red team 11).
            // Any other value holding `@` or `://` is taken for an address.
            let text = value.to_string_lossy();
            let address = n.to_ascii_uppercase().ends_with("ENDPOINT")
                || text.contains('@')
                || text.contains("://")
                || text.contains('\\');
            if !address {
                continue;
            }
            match readable_address(&text) {
                Some(bare) if bare == text => {}
                Some(bare) => out.push((name, Some(bare))),
                None => out.push((name, None)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collector's credentials, any signal's and in any case, and the outer trace context
    /// are withheld; an address loses its user information only.
    #[test]
    fn a_collectors_credentials_are_withheld_whatever_their_spelling() {
        for name in OTEL_NOT_INHERITED.iter().copied().chain([
            "OTEL_EXPORTER_OTLP_PROFILES_HEADERS",
            "otel_exporter_otlp_headers",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "traceparent",
        ]) {
            assert!(otel_withheld(name), "{name}");
        }
        for name in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "OTEL_SERVICE_NAME",
            "HEADERS",
        ] {
            assert!(!otel_withheld(name), "{name}");
        }
        for (url, bare) in [
            ("http://team:S3CRET@127.0.0.1:4318", "http://127.0.0.1:4318"),
            ("https://k@h:4317/v1/traces", "https://h:4317/v1/traces"),
            ("http://a:b@c@h:1/p?x=y@z", "http://h:1/p"),
            ("http://h:1/p@q", "http://h:1/p@q"),
            ("http://h:4318?api_key=S3CRET", "http://h:4318"),
            (
                "http://h:4318/v1/traces?api_key=S3CRET&x=1",
                "http://h:4318/v1/traces",
            ),
            ("https://h/otlp#S3CRET", "https://h/otlp"),
            ("HTTP://u:S3CRET@h:4318/a?k=S3CRET#f", "HTTP://h:4318/a"),
            ("h:4317", "h:4317"),
        ] {
            assert_eq!(without_credentials(url), bare, "{url}");
        }
        for (url, given) in [
            (
                "http://u:S3CRET@127.0.0.1:4399/",
                Some("http://127.0.0.1:4399/"),
            ),
            ("HTTPS://h:4317?k=S3CRET", Some("HTTPS://h:4317")),
            ("http:\\\\u:S3CRET@127.0.0.1:4399/", None),
            ("http:/\\u:S3CRET@h/", None),
            ("http://u:S3CRET@h/\\x", None),
            ("u:S3CRET@127.0.0.1:4317", None),
            ("ftp://u:S3CRET@h/", None),
            ("http://u:S3CRET@/x", None),
            ("http://h:1/a b", None),
        ] {
            assert_eq!(readable_address(url).as_deref(), given, "{url}");
        }
        assert_eq!(
            without_userinfo_in(
                "failed (`http://u:S@127.0.0.1:4399/v1/traces`): and https://k@h x"
            ),
            "failed (`http://127.0.0.1:4399/v1/traces`): and https://h x"
        );
        assert_eq!(
            without_userinfo_in(
                "an export failed (`http://127.0.0.1:4399/v1/metrics?api_key=S3CRET#S3CRET`: refused) and http://h/p?k=S3CRET x"
            ),
            "an export failed (`http://127.0.0.1:4399/v1/metrics`: refused) and http://h/p x"
        );
    }

    /// The sandbox reads the port block's variables by these names.
    #[test]
    fn the_sandbox_reads_the_ports_by_their_names() {
        assert_eq!(crate::sandbox::net::PORT_VAR, ORCH_PORT);
        assert_eq!(crate::sandbox::net::PORTS_VAR, ORCH_PORTS);
    }

    #[test]
    fn a_fresh_run_loses_the_agent_context_and_the_git_variables() {
        let removed: Vec<&str> = fresh_run_removals().collect();
        for name in [
            ORCH_PLAN,
            ORCH_TASK,
            ORCH_STATUS_FILE,
            ORCH_MANIFEST,
            "GIT_DIR",
        ] {
            assert!(removed.contains(&name), "{name} is kept");
        }
        let mut unique = removed.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), removed.len(), "{removed:?}");
    }

    #[test]
    fn the_github_tokens_are_withheld_unless_passed() {
        for name in ORCH_CREDENTIALS.iter().chain(AGENT_SOCKETS.iter()) {
            assert!(is_withheld(name, &[]), "{name} is passed");
            assert!(
                !is_withheld(name, &[name.to_string()]),
                "{name} cannot be passed"
            );
        }
        assert!(!is_withheld("GH_HOST", &[]));
        assert!(!is_withheld("HOME", &[]));
        let passed = ["GH_TOKEN".to_string()];
        assert!(
            is_withheld("GITHUB_TOKEN", &passed),
            "passing one passes another"
        );
    }
}
