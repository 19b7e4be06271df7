//! What a tool is made of: its arguments, each with its kind and its place on orch's command
//! line, and the arguments several tools share.

/// What an argument holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Str,
    Bool,
    Int,
    /// A list of words.
    Strs,
    /// A list of integers (comma-separated on the command line).
    Ints,
}

/// Where an argument goes on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Place {
    /// `--NAME=VALUE` (a list: `--NAME=a,b`).
    Opt(&'static str),
    /// `--NAME` when true.
    Switch(&'static str),
    /// A positional word (a list: one word each), after `--`, in the order of the parameters.
    Pos,
    /// The word right after the verb, one of these (`orch task ACTION`).
    Sub(&'static [&'static str]),
    /// Handled by the server, not passed on.
    Server,
}

/// One argument of a tool.
#[derive(Clone, Copy, Debug)]
pub(super) struct Param {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
    pub(super) required: bool,
    pub(super) place: Place,
    pub(super) help: &'static str,
}

pub(super) const fn p(
    name: &'static str,
    kind: Kind,
    place: Place,
    required: bool,
    help: &'static str,
) -> Param {
    Param {
        name,
        kind,
        required,
        place,
        help,
    }
}

/// One tool.
#[derive(Clone, Copy, Debug)]
pub(super) struct Spec {
    pub(super) name: &'static str,
    /// orch's words before the arguments (`["status"]`).
    pub(super) verb: &'static [&'static str],
    /// `--json` is given.
    pub(super) json: bool,
    /// Listed and callable only with `--allow-control`.
    pub(super) control: bool,
    pub(super) help: &'static str,
    pub(super) params: &'static [Param],
}

pub(super) const PLAN_OPT: Param = p(
    "plan",
    Kind::Str,
    Place::Opt("plan"),
    false,
    "One plan: a name from plans.toml (all plans without it).",
);
pub(super) const PLANS: Param = p(
    "plans",
    Kind::Strs,
    Place::Pos,
    false,
    "Plan names from plans.toml (all plans without them).",
);
pub(super) const PLAN: Param = p(
    "plan",
    Kind::Str,
    Place::Pos,
    true,
    "The plan's name in plans.toml.",
);
pub(super) const TASK: Param = p(
    "task",
    Kind::Str,
    Place::Pos,
    true,
    "The task id (`2.3`, or `V2` for a verification step).",
);
