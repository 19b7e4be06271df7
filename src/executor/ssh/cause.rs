//! Why a host cannot run agents, by its cause, each with its fix: what `ssh` said when it could
//! not connect (read from its own messages, which name the cause: a refused connection, a
//! refused key, a changed host key, …), or what orch's probe found on a host that answered (no
//! git, no Landlock). `orch hosts` and `orch up` say the cause and the fix on one line.

use crate::manifest::Host;

/// The cause of a failed probe (`orch hosts --json`'s `cause`, in snake case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Cause {
    /// Nothing listens on the host's ssh port.
    ConnectionRefused,
    /// The destination's name does not resolve.
    UnknownName,
    /// No route, a timeout, a connection closed before ssh spoke: the network or the machine.
    Network,
    /// The host refused every key `ssh` offered.
    KeyRefused,
    /// The host's key is not the one `known_hosts` has for it.
    HostKeyChanged,
    /// The host's key is in no `known_hosts` (batch mode accepts none).
    HostKeyUnknown,
    /// An identity file `ssh` was told to use does not exist.
    KeyFileMissing,
    /// The host answered, and its sessions' `PATH` has no `git`.
    NoGit,
    /// The host answered, has no Landlock, and its agents must be confined.
    NoLandlock,
    /// Something else (`ssh`'s own words say what).
    Other,
}

impl Cause {
    /// The cause in a few words.
    pub(crate) fn says(self) -> &'static str {
        match self {
            Cause::ConnectionRefused => "connection refused: nothing listens on its ssh port",
            Cause::UnknownName => "its name does not resolve",
            Cause::Network => "the network or the machine does not answer",
            Cause::KeyRefused => "the host refused the key",
            Cause::HostKeyChanged => "its host key differs from the one in known_hosts",
            Cause::HostKeyUnknown => "its host key is not in known_hosts",
            Cause::KeyFileMissing => "the key file is missing",
            Cause::NoGit => "no git on the PATH of its ssh sessions",
            Cause::NoLandlock => "no Landlock, and its agents must be confined",
            Cause::Other => "ssh failed",
        }
    }

    /// What to do about it, for `host`; `detail` is `ssh`'s own message (for the key file's
    /// name).
    pub(crate) fn fix(self, host: &Host, detail: &str) -> String {
        let try_it = try_command(host);
        let at = format!("its `[[host]]` at line {} of the manifest", host.line);
        match self {
            Cause::ConnectionRefused => format!(
                "start sshd on the host, or correct `ssh` or `port` in {at}; `{try_it} true` must work"
            ),
            Cause::UnknownName => format!(
                "correct `ssh` in {at}, or give the name a `Host` entry in ~/.ssh/config; `{try_it} true` must work"
            ),
            Cause::Network => format!(
                "check that the machine is up and reachable from here; `{try_it} true` must work"
            ),
            Cause::KeyRefused => format!(
                "add your public key to the remote user's ~/.ssh/authorized_keys (`ssh-copy-id {}`), or name the key with `IdentityFile` in ~/.ssh/config; orch runs ssh in batch mode, so a key with a passphrase must be in ssh-agent",
                host.ssh
            ),
            Cause::HostKeyChanged => {
                // The command `ssh` itself gives (the known_hosts file and the name there).
                let remove = detail
                    .split("; ")
                    .find(|l| l.trim_start().starts_with("ssh-keygen ") && l.contains(" -R "))
                    .map(|l| l.trim().replace("\\\"", "\""))
                    .unwrap_or_else(|| match host.port {
                        Some(p) => format!("ssh-keygen -R '[{}]:{p}'", host.ssh),
                        None => format!("ssh-keygen -R {}", host.ssh),
                    });
                format!(
                    "if the host was reinstalled, remove its old key (`{remove}`) and accept the new one once with `{try_it} true`; if not, someone may be intercepting the connection"
                )
            }
            Cause::HostKeyUnknown => format!(
                "connect once with `{try_it} true` and accept its key (orch runs ssh in batch mode, which accepts no new key)"
            ),
            Cause::KeyFileMissing => {
                let file = key_file(detail)
                    .map(|f| format!("`{f}`"))
                    .unwrap_or_else(|| "the key file".into());
                format!(
                    "{file} does not exist: correct `IdentityFile` in your ssh config, or make the key (`ssh-keygen -f <file>`) and install it (`ssh-copy-id`)"
                )
            }
            Cause::NoGit => format!(
                "install git on the host, or put it on the PATH of its non-interactive sessions; `{try_it} git --version` must work"
            ),
            Cause::NoLandlock => format!(
                "a kernel with Landlock on the host, or `sandbox = \"off\"` in {at} to run its agents unconfined"
            ),
            Cause::Other => format!("`{try_it} true` shows what ssh says"),
        }
    }
}

/// `ssh [-p PORT] DEST`: the command a person runs to try the host as orch reaches it.
fn try_command(host: &Host) -> String {
    match host.port {
        Some(p) => format!("ssh -p {p} {}", host.ssh),
        None => format!("ssh {}", host.ssh),
    }
}

/// The cause of `ssh`'s failure, from its messages `stderr` (the most specific one wins: a
/// missing key file before the refusal that follows from it).
pub(crate) fn of_ssh(stderr: &str) -> Cause {
    let has = |s: &str| stderr.contains(s);
    if has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("POSSIBLE DNS SPOOFING") {
        Cause::HostKeyChanged
    } else if has("Host key verification failed")
        || has("No matching host key")
        || (has("host key") && has("requested strict checking"))
    {
        Cause::HostKeyUnknown
    } else if has("not accessible: No such file or directory") || has("no such identity") {
        Cause::KeyFileMissing
    } else if has("Permission denied (") || has("Too many authentication failures") {
        Cause::KeyRefused
    } else if has("Connection refused") {
        Cause::ConnectionRefused
    } else if has("Could not resolve hostname") || has("Name or service not known") {
        Cause::UnknownName
    } else if has("timed out")
        || has("No route to host")
        || has("Network is unreachable")
        || has("Connection closed by")
        || has("Connection reset")
        || has("kex_exchange_identification")
        || has("banner exchange")
    {
        Cause::Network
    } else {
        Cause::Other
    }
}

/// The file of `ssh`'s "Identity file FILE not accessible" warning, or of its "no such
/// identity: FILE: No such file or directory".
fn key_file(stderr: &str) -> Option<&str> {
    let after = |open: &str, close: &str| {
        let rest = &stderr[stderr.find(open)? + open.len()..];
        Some(&rest[..rest.find(close)?])
    };
    after("Identity file ", " not accessible")
        .or_else(|| after("no such identity: ", ": No such file or directory"))
}

/// `ssh`'s messages as one line: each of its lines trimmed (a `\r\n` is a line's end, not text),
/// the noise of an accepted host key left out (and, for a changed host key, its banner: the
/// lines that name the offending key and the command that removes it are kept), joined by `; `,
/// escaped.
pub(crate) fn one_line(stderr: &str) -> String {
    let changed = of_ssh(stderr) == Cause::HostKeyChanged;
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .filter(|l| {
            !changed
                || l.starts_with("Offending")
                || l.starts_with("ssh-keygen ")
                || l.starts_with("Host key verification failed")
        })
        .map(|l| l.escape_debug().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            name: "h1".into(),
            ssh: "build1".into(),
            port: Some(2222),
            slots: 1,
            dir: "/srv/orch".into(),
            confined: true,
            line: 4,
        }
    }

    #[test]
    fn each_ssh_failure_is_read_as_its_cause_with_its_fix() {
        let cases = [
            (
                "ssh: connect to host 127.0.0.1 port 2222: Connection refused\r\n",
                Cause::ConnectionRefused,
                "start sshd",
            ),
            (
                "u@127.0.0.1: Permission denied (publickey).\r\n",
                Cause::KeyRefused,
                "authorized_keys",
            ),
            (
                "@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nHost key verification failed.\r\n",
                Cause::HostKeyChanged,
                "ssh-keygen -R '[build1]:2222'",
            ),
            (
                "@@@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\nSomeone could be eavesdropping\r\nOffending ED25519 key in /k/known_hosts:4\r\n  remove with:\r\n  ssh-keygen -f \"/k/known_hosts\" -R \"build1\"\r\nHost key verification failed.\r\n",
                Cause::HostKeyChanged,
                "`ssh-keygen -f \"/k/known_hosts\" -R \"build1\"`",
            ),
            (
                "No ED25519 host key is known for [127.0.0.1]:2222 and you have requested strict checking.\r\nHost key verification failed.\r\n",
                Cause::HostKeyUnknown,
                "accept its key",
            ),
            (
                "Warning: Identity file /home/u/.ssh/gone not accessible: No such file or directory.\r\nu@h: Permission denied (publickey).\r\n",
                Cause::KeyFileMissing,
                "`/home/u/.ssh/gone` does not exist",
            ),
            (
                "no such identity: /home/u/.ssh/gone: No such file or directory\r\nu@h: Permission denied (publickey).\r\n",
                Cause::KeyFileMissing,
                "`/home/u/.ssh/gone` does not exist",
            ),
            (
                "ssh: Could not resolve hostname nowhere: Name or service not known\r\n",
                Cause::UnknownName,
                "correct `ssh`",
            ),
            (
                "Connection timed out during banner exchange\r\n",
                Cause::Network,
                "ssh -p 2222 build1 true",
            ),
            ("something new\r\n", Cause::Other, "ssh -p 2222 build1 true"),
        ];
        for (said, cause, fix) in cases {
            assert_eq!(of_ssh(said), cause, "{said}");
            let line = one_line(said);
            let given = cause.fix(&host(), &line);
            assert!(given.contains(fix), "{cause:?}: {given}");
            assert!(
                !line.contains('\r') && !line.contains('\n') && !line.contains("\\r"),
                "{line}"
            );
        }
        assert_eq!(
            one_line("a\r\n\u{1b}[2Jb\r\n"),
            "a; \\u{1b}[2Jb",
            "each line escaped, joined"
        );
    }
}
