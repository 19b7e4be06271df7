//! orch's own hidden subcommands: the processes orch starts through its own executable (the
//! demo's agent, the probe of a remote host, the sandbox, git's and the session's wrappers).
//! Not for people: `--help` does not list them.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Subcommand, Debug, PartialEq)]
pub(super) enum Internal {
    /// The demo's scripted agent (run by `orch up` in `orch demo`): appends
    /// `<task>: <description>` to `src/<plan>.txt` in its worktree, or checks that file for a
    /// verification step. Reads ORCH_PLAN, ORCH_TASK, ORCH_WORKTREE.
    #[command(name = "demo-agent", hide = true)]
    DemoAgent,
    /// What orch's copy on a `[[host]]` says of that host to `orch hosts`: one JSON line (its
    /// Landlock ABI, the free space under `--dir`, which `--client` programs its PATH has).
    #[command(name = "host-probe", hide = true)]
    HostProbe {
        /// orch's directory on the host.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// A program to look for on PATH.
        #[arg(long = "client", value_name = "NAME")]
        client: Vec<String>,
    },
    /// How `orch up` runs an attempt of an `executor = "ssh"` plan: drives it on one of the
    /// plan's hosts over the shared connection and brings its work back (`--spec`: the file
    /// `orch up` wrote).
    #[command(name = "remote-attempt", hide = true)]
    RemoteAttempt {
        #[arg(long, value_name = "FILE")]
        spec: PathBuf,
    },
    /// orch's copy on a `[[host]]`: runs one attempt there for `orch remote-attempt`, speaking
    /// its frames on stdin and stdout.
    #[command(name = "remote-run", hide = true)]
    RemoteRun {
        /// orch's directory on the host.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// How `orch up` confines an agent (or a check): applies the Landlock rules, then becomes
    /// `ARGV` (`exec`). `orch sandbox-exec --write P… --deny-read P… -- ARGV…`.
    #[command(name = "sandbox-exec", hide = true)]
    SandboxExec {
        /// A path the process may write beneath.
        #[arg(long = "write", value_name = "PATH")]
        write: Vec<PathBuf>,
        /// A path the process may not read beneath.
        #[arg(long = "deny-read", value_name = "PATH")]
        deny_read: Vec<PathBuf>,
        /// A path the process may read beneath, denied above or not.
        #[arg(long = "read", value_name = "PATH")]
        read: Vec<PathBuf>,
        /// Only the network orch's variable asks for (a namespace, or Landlock's ports), no
        /// file rules: `verify` or a resolver where the agents' files are not confined.
        #[arg(long = "network-only", conflicts_with_all = ["write", "deny_read", "read"])]
        network_only: bool,
        /// A private directory of the attempt (its `TMPDIR`) made here when missing (a Slurm
        /// node, whose `/tmp` is its own), then writable.
        #[arg(long = "private-dir", value_name = "PATH")]
        private_dir: Vec<PathBuf>,
        /// Where this machine cannot confine (no Landlock: a Slurm node's kernel), run
        /// unconfined and say so on stderr (`sandbox = "auto"`); without it, run nothing.
        #[arg(long = "if-supported")]
        if_supported: bool,
        /// The program to run, confined, and its arguments.
        #[arg(last = true, required = true)]
        argv: Vec<String>,
    },
    #[command(name = "container-init", hide = true)]
    /// The first process of a plan's container (`executor = "container"`): keeps it running,
    /// reaps what is re-parented to it, ends on SIGTERM; not dumpable, so that no process of the
    /// container can trace it.
    ContainerInit,
    /// How `orch up` starts an attempt (or a check) of a container plan whose services are
    /// not known ready: waits for them (`--spec`, orch's JSON), then becomes `ARGV`; one that
    /// does not get ready is recorded and exits 98. In the plan's container, `--connect ADDR`
    /// connects to a service's port until it answers (`--within-ms`).
    /// `orch service-wait --spec JSON -- ARGV…`.
    #[command(name = "service-wait", hide = true)]
    ServiceWait {
        /// What to wait for (written by orch).
        #[arg(long, value_name = "JSON", conflicts_with = "connect")]
        spec: Option<String>,
        /// A service's address to connect to until it answers.
        #[arg(long, value_name = "ADDR")]
        connect: Option<String>,
        /// With `--connect`: for how long, at most.
        #[arg(long = "within-ms", value_name = "MS", default_value_t = 60_000)]
        within_ms: u64,
        /// What to become once they are ready.
        #[arg(last = true)]
        argv: Vec<String>,
    },
}
