//! Markdown plans: the grammar of BRIEF §1, parsed into [`Plan`]. Pure: text in, model out.

mod attempts;
mod check;
mod ids;
mod model;
mod parse;
mod render;

pub(crate) use parse::PlanReadError;

pub(crate) use attempts::{attempts_clause, attempts_problems};
pub(crate) use check::{check_clause, plain_description};

pub(crate) use ids::{IdIndex, IdMap, hash_bytes, id_map};
pub use model::*;
pub(crate) use parse::read_error;
pub use parse::{
    is_speckit, is_speckit_id, is_story, only_speckit_ticks, parse, parse_file, parse_file_with,
    parse_with, speckit_ticks, task_files, tick_speckit,
};

#[cfg(test)]
mod tests;
