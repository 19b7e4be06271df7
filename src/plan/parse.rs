//! Placeholder, replaced by the real parser in this session.
use std::path::{Path, PathBuf};

use super::model::Plan;

/// Reading a plan file failed before parsing could start.
#[derive(Debug, thiserror::Error)]
pub enum PlanReadError {
    #[error("cannot read plan file `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plan file `{path}` is not valid UTF-8 (first bad byte at line {line})")]
    NotUtf8 { path: PathBuf, line: usize },
}

pub fn parse_file(path: &Path) -> Result<Plan, PlanReadError> {
    let bytes = std::fs::read(path).map_err(|source| PlanReadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(parse(path, &text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..valid].iter().filter(|b| **b == b'\n').count() + 1;
            Err(PlanReadError::NotUtf8 {
                path: path.to_path_buf(),
                line,
            })
        }
    }
}

pub fn parse(path: &Path, _text: &str) -> Plan {
    Plan {
        path: path.to_path_buf(),
        title: String::new(),
        phases: vec![],
        tasks: vec![],
        sequential: vec![],
        parallel: vec![],
        diagnostics: vec![],
    }
}
