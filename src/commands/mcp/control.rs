//! orch's control verbs as tools: listed and callable only when a person starts `orch mcp
//! --allow-control`.

use super::spec::{Kind, PLAN, PLAN_OPT, PLANS, Param, Place, Spec, TASK, p};

/// orch's control verbs: listed and callable only with `--allow-control`.
pub(super) const CONTROL: &[Spec] = &[
    Spec {
        name: "up",
        verb: &["up"],
        json: false,
        control: true,
        help: "Start `orch up` detached (it keeps running after this call and after the MCP server): returns once the run has started (`{\"started\": true, \"pid\"}`) or with its exit code and message if it ended first. Follow it with `wait` and `status`.",
        params: &[
            PLANS,
            p(
                "max_agents",
                Kind::Int,
                Place::Opt("max-agents"),
                false,
                "Agents running at once, all plans together.",
            ),
            p(
                "merge",
                Kind::Bool,
                Place::Switch("merge"),
                false,
                "The merge train: land each plan as soon as it and its upstream plans are done.",
            ),
        ],
    },
    Spec {
        name: "task",
        verb: &["task"],
        json: true,
        control: true,
        help: "Record a task's outcome as `orch task ACTION ID` does (`start`, `done`, `fail`, `skip`, `reset`, `ask`).",
        params: &[
            p(
                "action",
                Kind::Str,
                Place::Sub(&["start", "done", "fail", "skip", "reset", "ask"]),
                true,
                "`start`, `done`, `fail`, `skip`, `reset` or `ask`.",
            ),
            PLAN_OPT,
            p(
                "id",
                Kind::Str,
                Place::Pos,
                true,
                "The task id (`2.3`, `V2`).",
            ),
            p(
                "question",
                Kind::Str,
                Place::Pos,
                false,
                "With `ask`: the question.",
            ),
            p(
                "note",
                Kind::Str,
                Place::Opt("note"),
                false,
                "With `done`: a note.",
            ),
            p(
                "error",
                Kind::Str,
                Place::Opt("error"),
                false,
                "With `fail`: what went wrong.",
            ),
            p(
                "reason",
                Kind::Str,
                Place::Opt("reason"),
                false,
                "With `skip`: why.",
            ),
            p(
                "force",
                Kind::Bool,
                Place::Switch("force"),
                false,
                "Allow a transition otherwise refused.",
            ),
        ],
    },
    Spec {
        name: "say",
        verb: &["say"],
        json: true,
        control: true,
        help: "Tell a task something (`orch say`): kept for its next attempts, delivered at once to an agent that reads messages.",
        params: &[
            PLAN,
            TASK,
            p(
                "text",
                Kind::Str,
                Place::Pos,
                true,
                "The message (at most 8 KiB).",
            ),
            p(
                "restart",
                Kind::Bool,
                Place::Switch("restart"),
                false,
                "Stop the running attempt now; the next starts with the message.",
            ),
        ],
    },
    Spec {
        name: "answer",
        verb: &["answer"],
        json: true,
        control: true,
        help: "Answer the question a task's agent asked (`orch answer`): the task is pending again and its next attempt reads the answer.",
        params: &[
            PLAN,
            TASK,
            p(
                "text",
                Kind::Str,
                Place::Pos,
                true,
                "The answer (at most 8 KiB).",
            ),
        ],
    },
    Spec {
        name: "pause",
        verb: &["pause"],
        json: true,
        control: true,
        help: "Pause a plan (`orch pause`): none of its tasks starts any more.",
        params: &[PLAN],
    },
    Spec {
        name: "resume",
        verb: &["resume"],
        json: true,
        control: true,
        help: "Resume a paused plan (`orch resume`).",
        params: &[PLAN],
    },
    Spec {
        name: "retry",
        verb: &["retry"],
        json: true,
        control: true,
        help: "Put a failed task back to pending (`orch retry`).",
        params: &[PLAN, TASK],
    },
    Spec {
        name: "stop",
        verb: &["stop"],
        json: true,
        control: true,
        help: "Stop a running task's agent (`orch stop`): it fails with the cause `stopped`.",
        params: &[PLAN, TASK],
    },
    Spec {
        name: "resolve",
        verb: &["resolve"],
        json: true,
        control: true,
        help: "Hand a plan that conflicts with the target to its `resolve` agent (`orch resolve --json`); with `dry_run`, only the prompt it would get.",
        params: &[
            PLAN,
            p(
                "dry_run",
                Kind::Bool,
                Place::Switch("dry-run"),
                false,
                "Print the prompt; change nothing.",
            ),
        ],
    },
];

/// `merge`'s argument that lands plans: only with `--allow-control`.
pub(super) const LAND: Param = p(
    "land",
    Kind::Bool,
    Place::Server,
    false,
    "Land the plans (`orch merge`); without it, a dry run. Only with `orch mcp --allow-control`.",
);
