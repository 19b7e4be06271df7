//! The adversarial suite: each module is one surface through which an agent could
//! get out of its confinement by what it leaves behind, tried end to end through the real `orch`
//! as a hostile agent would. Each test checks that no file was written and no program run
//! outside the agent's write set, that `main` and every other ref moved only by orch's own
//! merges, and that nothing was lost.

#[path = "../support/mod.rs"]
mod support;

pub use support::landlock;

mod ask;
mod bare_repos;
mod best_of;
mod big_files;
mod big_files_sparse;
mod big_files_together;
mod big_trees;
mod case_names;
mod channels;
mod checks;
mod claims;
mod clean_keep;
mod client_files;
mod clients;
mod code;
mod containers;
mod copied;
mod exemptions;
mod foreign_history;
mod git;
mod held;
mod history;
mod hooks;
mod ignores;
mod implicit_code;
mod links;
mod merge_bases;
mod modes;
mod network;
mod on_hosts;
mod own_dirs;
mod peers;
mod processes;
mod reads;
mod recovery;
mod removals;
mod replan;
mod report_dirs;
mod reports;
mod resolve;
mod resume;
mod setuid;
mod special_files;
mod submodules;
mod supervisor_lock;
mod terminal;
mod terminals;
mod trusted_files;
