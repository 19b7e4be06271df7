//! Markdown plans: the grammar of BRIEF §1, parsed into [`Plan`]. Pure: text in, model out.

mod attempts;
mod check;
mod ids;
mod model;
mod parse;
mod render;

pub use parse::PlanReadError;

pub use attempts::{MAX_ATTEMPTS, attempts_clause, attempts_problems};
pub use check::check_clause;

pub use ids::{IdHasher, IdIndex, IdMap, hash_bytes, id_map};
pub use model::*;
pub use parse::{parse, parse_file, parse_file_with, parse_with, task_files};

#[cfg(test)]
mod tests;
