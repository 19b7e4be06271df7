//! From parsed arguments to the command that runs them.

use crate::commands::control::{Request, run as control};
use crate::commands::{self, Selection};
use crate::error::CliError;
use crate::manifest::MergeStrategy;
use crate::status::{Transition, TransitionOptions};

use super::args::{Cli, Command, GraphFormat, TaskAction};
use super::internal::Internal;

pub(super) fn run(cli: Cli) -> Result<u8, CliError> {
    match cli.command {
        Command::Check { target, json } => commands::check::run(&target.selection(), json),
        Command::Status {
            target,
            json,
            rebuild,
            watch,
            all,
            disk,
        } => commands::status::run(&target.selection(), json, rebuild, watch, all, disk),
        Command::Next {
            target,
            count,
            json,
            all,
            why,
        } => commands::next::run(
            &target.selection(),
            commands::next::NextArgs {
                count,
                json,
                all,
                why,
            },
        ),
        Command::Up {
            target,
            plans,
            json,
            max_agents,
            merge,
            pr,
        } => commands::up::run(
            &target.selection(),
            commands::up::UpArgs {
                plans,
                json,
                max_agents: max_agents.map(usize::from),
                merge,
                pr,
            },
        ),
        Command::Simulate {
            target,
            plans,
            slots,
            default_duration,
            seed,
            policy,
            per_plan,
            width,
            json,
            history,
        } => commands::simulate::run(
            &target.selection(),
            &commands::simulate::SimulateArgs {
                plans,
                slots,
                default_duration,
                seed,
                policies: policy,
                per_plan,
                width,
                json,
                history,
            },
        ),
        Command::Conflicts {
            target,
            plans,
            json,
        } => commands::conflicts::run(&target.selection(), &plans, json),
        Command::Integrate { target, json } => commands::integrate::run(&target.selection(), json),
        Command::Hosts { target, json } => commands::hosts::run(&target.selection(), json),
        Command::Internal(Internal::RemoteAttempt { spec }) => {
            Ok(crate::executor::ssh::attempt::run(&spec))
        }
        Command::Internal(Internal::RemoteRun { dir }) => {
            Ok(crate::executor::ssh::remote_run::run(&dir))
        }
        Command::Internal(Internal::HostProbe { dir, client }) => {
            commands::output::print_json(&crate::executor::ssh::remote::probe(&dir, &client));
            Ok(crate::error::exit::OK)
        }
        Command::Clean {
            target,
            plans,
            force,
            dry_run,
            json,
        } => commands::clean::run(
            &target.selection(),
            commands::clean::CleanArgs {
                plans,
                force,
                dry_run,
                json,
            },
        ),
        Command::Merge {
            target,
            plans,
            dry_run,
            json,
            strategy,
            stop_on_failure,
            allow_protected,
        } => commands::merge::run(
            &target.selection(),
            commands::merge::MergeArgs {
                plans,
                dry_run,
                json,
                strategy: strategy.map(MergeStrategy::from),
                stop_on_failure,
                allow_protected,
            },
        ),
        Command::Pr {
            target,
            plans,
            dry_run,
            json,
            watch,
            once,
            poll,
        } => commands::pr::run(
            &target.selection(),
            commands::pr::PrArgs {
                plans,
                dry_run,
                json,
                watch: watch.then_some(crate::review::WatchArgs { once, poll }),
            },
        ),
        Command::Sync {
            target,
            plans,
            json,
        } => commands::sync::run(&target.selection(), plans, json),
        Command::Graph { target, format } => {
            let format = match format {
                GraphFormat::Text => commands::graph::Format::Text,
                GraphFormat::Dot => commands::graph::Format::Dot,
                GraphFormat::Mermaid => commands::graph::Format::Mermaid,
            };
            commands::graph::run(&target.selection(), format)
        }
        Command::Init { dir, from: None } => commands::init::run(dir.as_deref()),
        Command::Init {
            dir,
            from: Some(from),
        } => {
            let dir = match dir {
                Some(d) => d,
                None => std::env::current_dir().map_err(|e| {
                    crate::error::CliError::from(anyhow::anyhow!(
                        "cannot read the current directory: {e}"
                    ))
                })?,
            };
            commands::init_from::run(&dir, &from)
        }
        Command::Demo { dir, no_merge } => commands::demo::run(dir.as_deref(), !no_merge),
        Command::Internal(Internal::DemoAgent) => commands::demo::run_agent(),
        Command::Internal(Internal::ContainerInit) => Ok(crate::executor::container::init::run()),
        Command::Internal(Internal::SandboxExec {
            write,
            deny_read,
            read,
            network_only,
            private_dir,
            if_supported,
            argv,
        }) => commands::sandbox_exec::run(
            (!network_only).then_some(crate::sandbox::Rules {
                write,
                deny_read,
                read,
            }),
            commands::sandbox_exec::Node {
                private_dirs: private_dir,
                if_supported,
            },
            &argv,
        ),
        Command::Internal(Internal::ServiceWait {
            spec,
            connect,
            within_ms,
            argv,
        }) => commands::sandbox_exec::run_service_wait(
            spec.as_deref(),
            connect.as_deref(),
            std::time::Duration::from_millis(within_ms),
            &argv,
        ),
        Command::Logs {
            plan,
            task,
            path,
            json,
            raw,
            manifest,
            attempt,
            tail_bytes,
        } => commands::logs::run(&commands::logs::LogsArgs {
            manifest,
            plan,
            task,
            path,
            json,
            raw,
            attempt,
            tail_bytes,
        }),
        Command::Mcp(m) => commands::mcp::run(commands::mcp::McpArgs {
            manifest: m.manifest,
            allow_control: m.allow_control,
        }),
        Command::Serve(s) => commands::serve::run(commands::serve::ServeArgs {
            manifest: s.manifest,
            port: s.port,
            bind: s.bind,
            control: s.control,
        }),
        Command::Top { manifest } => crate::top::run(crate::workspace::load(&Selection {
            manifest,
            plan: None,
        })?),
        Command::Pause(c) => control(c.manifest, &Request::Pause { plan: c.plan }, c.json),
        Command::Resume(c) => control(c.manifest, &Request::Resume { plan: c.plan }, c.json),
        Command::Retry(c) => {
            let (plan, id) = (c.plan, c.id);
            control(c.manifest, &Request::Retry { plan, id }, c.json)
        }
        Command::Stop(c) => {
            let (plan, id) = (c.plan, c.id);
            control(c.manifest, &Request::Stop { plan, id }, c.json)
        }
        Command::Answer { task, text } => {
            let (plan, id) = (task.plan, task.id);
            control(
                task.manifest,
                &Request::Answer { plan, id, text },
                task.json,
            )
        }
        Command::Say {
            task,
            text,
            restart,
        } => {
            let (plan, id) = (task.plan, task.id);
            let request = Request::Say {
                plan,
                id,
                text,
                restart,
            };
            control(task.manifest, &request, task.json)
        }
        Command::Completions { shell } => super::generate::completions(shell),
        Command::Man { command } => super::generate::man(command.as_deref()),
        Command::Resolve {
            target,
            name,
            dry_run,
            json,
        } => commands::resolve::run(
            &target.selection(),
            commands::resolve::ResolveArgs {
                plan: name,
                dry_run,
                json,
            },
        ),
        Command::History {
            target,
            json,
            backtest,
            last,
            profile,
            run,
        } => commands::history::run(
            &target.selection(),
            &commands::history::HistoryArgs {
                json,
                backtest,
                last,
                profile: profile.then_some(run),
            },
        ),
        Command::Task { action } => {
            let mut question = None;
            let (transition, common, note, error, reason) = match action {
                TaskAction::Ask {
                    common,
                    question: q,
                } => {
                    question = Some(q);
                    (Transition::Ask, common, None, None, None)
                }
                TaskAction::Start(c) => (Transition::Start, c, None, None, None),
                TaskAction::Done { common, note } => (Transition::Done, common, note, None, None),
                TaskAction::Fail { common, error } => (Transition::Fail, common, None, error, None),
                TaskAction::Skip { common, reason } => {
                    (Transition::Skip, common, None, None, reason)
                }
                TaskAction::Reset(c) => (Transition::Reset, c, None, None, None),
            };
            let opts = TransitionOptions {
                force: common.force,
                note,
                error,
                reason,
                question,
                ..Default::default()
            };
            commands::task::run(
                &common.target.selection(),
                commands::task::TaskArgs {
                    transition,
                    id: common.id,
                    opts,
                    json: common.json,
                },
            )
        }
    }
}

/// `orch session-exec` and `orch-exec session` ([`super::helper_args::SessionExecArgs`]).
pub(super) fn session_exec(a: super::helper_args::SessionExecArgs) -> crate::error::CliResult<u8> {
    commands::sandbox_exec::run_in_session(
        &crate::process::wrapper::Options {
            log_max: a.log_max,
            grace: std::time::Duration::from_millis(a.grace_ms),
            keep: a.keep,
            gate: a.gate,
            stdin_file: a.stdin,
            input: a.input,
            stream_json: a.stream_json,
            turn_ended: a.turn_ended,
            ended: a.ended,
        },
        &a.argv,
    )
}
