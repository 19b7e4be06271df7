//! The review loop (`orch pr --watch`): what reviewers and CI say about the pull requests orch
//! opened goes back to each plan's agent, round by round, until the pull request is approved
//! with green checks or handed to a person.
//!
//! - [`feedback`]: what GitHub reports of one pull request (threads, reviews, checks), parsed
//!   from the JSON the GitHub CLI prints; all of it untrusted text.
//! - [`decide`]: what one poll makes of it (a round of tasks, an approval, an escalation, or
//!   nothing yet), from the feedback and orch's own record of what it handled. Pure.
//! - [`text`]: a round as a phase of the plan, the reviewers' words fenced and quoted as data.
//! - [`state`]: orch's record per plan (`<state_dir>/<plan>/review.json`): the round, the
//!   threads, reviews and checks turned into tasks, the replies orch posted.
//! - [`gh`]: the GitHub CLI calls, their output bounded.
//! - [`watch`]: the loop and its effects (the plan edited, `orch up` run, the branch pushed,
//!   replies, labels, events).

pub(crate) mod decide;
pub(crate) mod feedback;
pub(crate) mod gh;
pub(crate) mod state;
pub(crate) mod text;
pub(crate) mod watch;

pub(crate) use watch::{WatchArgs, watch};
