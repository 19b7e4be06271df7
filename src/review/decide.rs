//! What one poll of a pull request makes of what GitHub reports, given orch's record: a round of
//! tasks, an approval, an escalation to a person, or nothing yet. Pure: the feedback, the record
//! and who counts as a reviewer in, the decision out.
//!
//! - An unresolved thread with a comment newer than the last one taken, by someone who counts
//!   and not one of orch's own replies → one task.
//! - A `CHANGES_REQUESTED` review with a body of its own, by someone who counts, not taken
//!   before → one task.
//! - A failed check of the head commit not taken for that commit before → one task.
//!
//! What one poll finds is one round. A round past `review_rounds` escalates instead. An
//! approval (GitHub's review decision, or without required reviews the latest review of each
//! reviewer who counts) with every check of the head completed and none failed ends the loop.

use super::feedback::{Check, Comment, PrView};
use super::state::PrState;

/// The most tasks one round takes; the rest waits for the next poll.
pub(crate) const MAX_TASKS: usize = 30;

/// One piece of feedback that becomes a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Thread {
        id: String,
        path: String,
        line: Option<u64>,
        /// The thread's first comment (what a reply answers).
        reply_to: u64,
        /// The code the thread is on.
        hunk: String,
        /// The comments to address (new, by reviewers who count).
        comments: Vec<Comment>,
        /// The newest comment of the thread now (recorded as taken).
        newest: u64,
    },
    Review {
        id: String,
        author: String,
        body: String,
    },
    Check {
        /// `name@head`.
        key: String,
        check: Check,
    },
}

/// What a poll decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The pull request is closed or merged on GitHub (its state).
    Closed(String),
    /// Nothing to do yet (checks running, no review, no new feedback).
    Wait,
    /// Approved with green checks.
    Approved,
    /// A round: these become tasks.
    Round(Vec<Item>),
    /// Feedback for a round past `review_rounds`.
    Escalate(String),
}

/// The decision for `view` given the record `st`, at most `rounds` rounds, `counts` telling
/// whether a login's comments count.
pub(crate) fn decide(
    view: &PrView,
    st: &PrState,
    rounds: u32,
    counts: &dyn Fn(&str) -> bool,
) -> Decision {
    if !view.state.is_empty() && !view.state.eq_ignore_ascii_case("OPEN") {
        return Decision::Closed(view.state.to_ascii_lowercase());
    }
    let items = feedback(view, st, counts);
    if !items.is_empty() {
        if st.round >= rounds {
            return Decision::Escalate(format!(
                "feedback for round {} arrived ({} item{}); `review_rounds` is {rounds}",
                st.round + 1,
                items.len(),
                if items.len() == 1 { "" } else { "s" }
            ));
        }
        return Decision::Round(items);
    }
    let checks_green = view.checks.iter().all(|c| c.done() && !c.failed());
    if checks_green && approved(view, counts) {
        Decision::Approved
    } else {
        Decision::Wait
    }
}

/// The feedback not taken yet, at most [`MAX_TASKS`] items.
pub(crate) fn feedback(view: &PrView, st: &PrState, counts: &dyn Fn(&str) -> bool) -> Vec<Item> {
    let mut items = Vec::new();
    for t in view.threads.iter().filter(|t| !t.resolved) {
        let taken = st.threads.get(&t.id).copied().unwrap_or(0);
        let fresh: Vec<Comment> = t
            .comments
            .iter()
            .filter(|c| c.id > taken && !st.own.contains(&c.id) && counts(&c.author))
            .cloned()
            .collect();
        let Some(first) = t.comments.first() else {
            continue;
        };
        if fresh.is_empty() {
            continue;
        }
        items.push(Item::Thread {
            id: t.id.clone(),
            path: t.path.clone(),
            line: t.line,
            reply_to: first.id,
            hunk: first.hunk.clone(),
            comments: fresh,
            newest: t.comments.iter().map(|c| c.id).max().unwrap_or(0),
        });
    }
    for r in &view.reviews {
        if r.state.eq_ignore_ascii_case("CHANGES_REQUESTED")
            && !r.body.trim().is_empty()
            && !r.id.is_empty()
            && !st.reviews.contains(&r.id)
            && counts(&r.author)
        {
            items.push(Item::Review {
                id: r.id.clone(),
                author: r.author.clone(),
                body: r.body.clone(),
            });
        }
    }
    for c in view.checks.iter().filter(|c| c.failed()) {
        let key = format!("{}@{}", c.name, view.head);
        if !st.checks.contains(&key) {
            items.push(Item::Check {
                key,
                check: c.clone(),
            });
        }
    }
    items.truncate(MAX_TASKS);
    items
}

/// Approved: GitHub's review decision says so, or (no review required) some reviewer who counts
/// approved and none of them asks for changes in their latest review.
fn approved(view: &PrView, counts: &dyn Fn(&str) -> bool) -> bool {
    match view.decision.to_ascii_uppercase().as_str() {
        "APPROVED" => true,
        "" => {
            let mut latest: Vec<(&str, &str)> = Vec::new();
            for r in view.reviews.iter().filter(|r| counts(&r.author)) {
                let state = r.state.as_str();
                if !matches!(state, "APPROVED" | "CHANGES_REQUESTED" | "DISMISSED") {
                    continue;
                }
                match latest.iter_mut().find(|(a, _)| *a == r.author) {
                    Some(slot) => slot.1 = state,
                    None => latest.push((&r.author, state)),
                }
            }
            latest.iter().any(|(_, s)| *s == "APPROVED")
                && !latest.iter().any(|(_, s)| *s == "CHANGES_REQUESTED")
        }
        _ => false,
    }
}

/// Records `items` as taken in `st`.
pub(crate) fn take(st: &mut PrState, items: &[Item]) {
    for item in items {
        match item {
            Item::Thread { id, newest, .. } => {
                st.threads.insert(id.clone(), *newest);
            }
            Item::Review { id, .. } => {
                st.reviews.insert(id.clone());
            }
            Item::Check { key, .. } => {
                st.checks.insert(key.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::feedback::{Review, Thread};
    use super::*;

    fn comment(id: u64, author: &str) -> Comment {
        Comment {
            id,
            author: author.into(),
            body: format!("comment {id}"),
            hunk: "@@ -1 +1 @@".into(),
        }
    }

    fn view() -> PrView {
        PrView {
            number: 7,
            state: "OPEN".into(),
            head: "h1".into(),
            threads: vec![
                Thread {
                    id: "T1".into(),
                    path: "a.txt".into(),
                    line: Some(2),
                    comments: vec![comment(10, "ann")],
                    ..Thread::default()
                },
                Thread {
                    id: "T2".into(),
                    resolved: true,
                    comments: vec![comment(20, "ann")],
                    ..Thread::default()
                },
                Thread {
                    id: "T3".into(),
                    comments: vec![comment(30, "mallory")],
                    ..Thread::default()
                },
            ],
            reviews: vec![Review {
                id: "R1".into(),
                author: "ann".into(),
                state: "CHANGES_REQUESTED".into(),
                body: "please also fix the docs".into(),
            }],
            checks: vec![Check {
                id: 1,
                name: "ci".into(),
                status: "completed".into(),
                conclusion: "failure".into(),
                ..Check::default()
            }],
            ..PrView::default()
        }
    }

    fn ann(login: &str) -> bool {
        login == "ann"
    }

    #[test]
    fn one_task_per_open_thread_per_review_body_per_failed_check_of_those_who_count() {
        let Decision::Round(items) = decide(&view(), &PrState::default(), 3, &ann) else {
            panic!("a round");
        };
        // T2 is resolved, T3's author does not count.
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(matches!(&items[0], Item::Thread { id, reply_to: 10, .. } if id == "T1"));
        assert!(matches!(&items[1], Item::Review { id, .. } if id == "R1"));
        assert!(matches!(&items[2], Item::Check { key, .. } if key == "ci@h1"));
    }

    #[test]
    fn nothing_is_taken_twice_and_own_replies_are_not_feedback() {
        let mut st = PrState::default();
        let Decision::Round(items) = decide(&view(), &st, 3, &ann) else {
            panic!("a round");
        };
        take(&mut st, &items);
        st.round = 1;
        let mut v = view();
        assert_eq!(decide(&v, &st, 3, &ann), Decision::Wait);
        // orch's reply in the thread (written as ann, the user orch runs as): not feedback.
        v.threads[0].comments.push(comment(11, "ann"));
        st.own.insert(11);
        assert_eq!(decide(&v, &st, 3, &ann), Decision::Wait);
        // A new comment in the still-open thread: a task again, for that comment only.
        v.threads[0].comments.push(comment(12, "ann"));
        let Decision::Round(items) = decide(&v, &st, 3, &ann) else {
            panic!("a round");
        };
        assert!(
            matches!(&items[..], [Item::Thread { comments, newest: 12, .. }] if comments.len() == 1 && comments[0].id == 12)
        );
        // The same check failing on a new head commit: a task again.
        let mut v = view();
        v.head = "h2".into();
        assert!(
            matches!(decide(&v, &st, 3, &ann), Decision::Round(items) if matches!(&items[..], [Item::Check { key, .. }] if key == "ci@h2"))
        );
    }

    #[test]
    fn a_round_past_the_limit_escalates() {
        let st = PrState {
            round: 3,
            ..PrState::default()
        };
        assert!(
            matches!(decide(&view(), &st, 3, &ann), Decision::Escalate(why) if why.contains("round 4"))
        );
    }

    #[test]
    fn approval_needs_green_checks_and_no_change_request() {
        let mut v = view();
        v.threads.clear();
        v.checks[0].conclusion = "success".into();
        let st = PrState {
            reviews: ["R1".to_string()].into(),
            ..PrState::default()
        };
        assert_eq!(decide(&v, &st, 3, &ann), Decision::Wait);
        v.reviews.push(Review {
            id: "R2".into(),
            author: "ann".into(),
            state: "APPROVED".into(),
            body: String::new(),
        });
        assert_eq!(decide(&v, &st, 3, &ann), Decision::Approved);
        // An approval by someone who does not count is no approval.
        assert_eq!(decide(&v, &st, 3, &|_| false), Decision::Wait);
        v.checks[0].status = "in_progress".into();
        assert_eq!(decide(&v, &st, 3, &ann), Decision::Wait);
        v.checks.clear();
        v.decision = "REVIEW_REQUIRED".into();
        assert_eq!(decide(&v, &st, 3, &ann), Decision::Wait);
        v.decision = "APPROVED".into();
        assert_eq!(decide(&v, &st, 3, &ann), Decision::Approved);
        v.state = "MERGED".into();
        assert_eq!(decide(&v, &st, 3, &ann), Decision::Closed("merged".into()));
    }
}
