//! `orch conflicts`: which plan branches would conflict with each other or with the target, and
//! on which files. Merges are tried in memory (nothing is written); plans not started yet are
//! compared by the files their tasks name ("predicted").

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::output::{print_json, println_safe};
use crate::error::{CliError, CliResult, exit};
use crate::git;
use crate::workspace::{self, Selection, Workspace};

/// How a pair was compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// Both sides have a branch: git's merge, nothing written.
    Merge,
    /// One side has not started: the files its tasks name against the other's.
    Predicted,
}

/// One compared pair (and, serialized, one of `--json`'s `pairs`).
#[derive(Serialize)]
struct Pair {
    a: String,
    b: String,
    /// `files` is not empty.
    conflict: bool,
    files: Vec<String>,
    kind: Kind,
    a_branch: Option<String>,
    b_branch: Option<String>,
    /// `b` is the target branch, not a plan.
    with_target: bool,
}

/// A plan as the comparison sees it (and, serialized, one of `--json`'s `plans`).
#[derive(Serialize)]
struct PlanSide {
    name: String,
    /// The `[[repo]]` it changes (absent: the home repository).
    #[serde(skip_serializing_if = "Option::is_none")]
    repo: Option<String>,
    branch: String,
    /// The branch exists.
    started: bool,
    /// The files its branch changed since the merge base with the target.
    #[serde(rename = "changed_files")]
    changed: Vec<String>,
    /// The files its unfinished tasks name.
    task_files: Vec<String>,
    #[serde(skip)]
    selected: bool,
}

/// Compares the plans named (empty: every plan of the manifest, or the one `--plan`).
pub(crate) fn run(sel: &Selection, plans: &[String], json_out: bool) -> CliResult<u8> {
    let (ws, manifest) = super::with_manifest(
        sel,
        false,
        "`orch conflicts` needs a plans.toml: it compares the branches of the plans it lists",
    )?;
    let selected = ws.select(plans)?;
    let repo_root = workspace::repo_root(&manifest)?;
    let target = super::existing_target(&repo_root, &manifest)?;
    // Each repository's plans are compared in that repository, against its target: plans of
    // different repositories never conflict.
    let mut sides_all = Vec::new();
    let mut pairs = Vec::new();
    let repos = std::iter::once(None).chain(manifest.repos.iter().map(|r| Some(r.name.as_str())));
    for repo in repos {
        let mine = |lp: &crate::workspace::LoadedPlan| lp.repo.as_deref() == repo;
        if !selected.iter().any(|&i| mine(&ws.plans[i])) {
            continue;
        }
        let (root, target) = match repo.and_then(|r| manifest.repos.iter().find(|e| e.name == r)) {
            None => (repo_root.clone(), target.clone()),
            Some(r) => {
                let root = r
                    .abs_path
                    .canonicalize()
                    .unwrap_or_else(|_| r.abs_path.clone());
                if git::branch_tip(&root, &r.target)
                    .map_err(CliError::coded)?
                    .is_none()
                {
                    return Err(CliError::coded(crate::git::GitError::TargetMissing {
                        target: format!("{} (of repository `{}`)", r.target, r.name),
                    }));
                }
                (root, r.target.clone())
            }
        };
        let these = sides(&ws, &root, &target, &selected, mine)?;
        pairs.extend(compare(&root, &target, &these)?);
        sides_all.extend(these);
    }
    let sides = sides_all;

    let merge_conflict = pairs
        .iter()
        .any(|p| p.kind == Kind::Merge && !p.files.is_empty());
    if json_out {
        print_json(&json!({
            "target": target,
            "plans": sides.iter().filter(|s| s.selected).collect::<Vec<_>>(),
            "pairs": pairs,
        }));
    } else {
        println_safe(&render(&target, &sides, &pairs));
    }
    Ok(if merge_conflict {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

/// The plans of one repository (`mine`), in `repo_root` against `target`.
fn sides(
    ws: &Workspace,
    repo_root: &Path,
    target: &str,
    selected: &[usize],
    mine: impl Fn(&crate::workspace::LoadedPlan) -> bool,
) -> CliResult<Vec<PlanSide>> {
    let manifest = ws.manifest.as_ref();
    let mut out = Vec::new();
    for (i, lp) in ws.plans.iter().enumerate() {
        let Some(entry) = manifest.and_then(|m| m.plan(&lp.name)) else {
            continue;
        };
        if !mine(lp) {
            continue;
        }
        let started = git::branch_tip(repo_root, &entry.branch)
            .map_err(CliError::coded)?
            .is_some();
        let changed = if started {
            git::changed_files(repo_root, &entry.branch, target).map_err(CliError::coded)?
        } else {
            Vec::new()
        };
        let mut task_files: Vec<String> = Vec::new();
        for t in lp.plan.tasks.iter().filter(|t| !t.done) {
            for f in &t.files {
                if !task_files.contains(f) {
                    task_files.push(f.clone());
                }
            }
        }
        out.push(PlanSide {
            name: lp.name.clone(),
            repo: lp.repo.clone(),
            branch: entry.branch.clone(),
            started,
            task_files,
            changed,
            selected: selected.contains(&i),
        });
    }
    Ok(out)
}

/// Every pair that involves a selected plan: branch against target, branch against branch
/// (merged in memory), and a plan not started against any other (predicted from file names).
fn compare(repo_root: &Path, target: &str, sides: &[PlanSide]) -> CliResult<Vec<Pair>> {
    // Revisions: the started plans' branches, then the target.
    let started: Vec<usize> = (0..sides.len()).filter(|&i| sides[i].started).collect();
    let mut revs: Vec<String> = started.iter().map(|&i| sides[i].branch.clone()).collect();
    revs.push(target.to_string());
    let target_rev = revs.len() - 1;
    let mut wanted = Vec::new();
    let mut meta = Vec::new();
    for (ri, &i) in started.iter().enumerate() {
        if sides[i].selected {
            wanted.push((target_rev, ri));
            meta.push((i, None));
        }
    }
    for (ri, &i) in started.iter().enumerate() {
        for (rj, &j) in started.iter().enumerate().skip(ri + 1) {
            if sides[i].selected || sides[j].selected {
                wanted.push((ri, rj));
                meta.push((i, Some(j)));
            }
        }
    }
    let results = git::conflicts_of_pairs(repo_root, &revs, &wanted).map_err(CliError::coded)?;
    let mut pairs: Vec<Pair> = meta
        .into_iter()
        .zip(results)
        .map(|((i, j), files)| {
            let (b, b_branch) = match j {
                None => (target, target),
                Some(j) => (sides[j].name.as_str(), sides[j].branch.as_str()),
            };
            Pair {
                a: sides[i].name.clone(),
                b: b.to_string(),
                a_branch: Some(sides[i].branch.clone()),
                b_branch: Some(b_branch.to_string()),
                with_target: j.is_none(),
                kind: Kind::Merge,
                conflict: !files.is_empty(),
                files,
            }
        })
        .collect();

    // Plans not started: the files their tasks name against everything the other plan touches.
    for (i, a) in sides.iter().enumerate() {
        for (j, b) in sides.iter().enumerate() {
            if i == j || a.started || !(a.selected || b.selected) {
                continue;
            }
            // Two plans not started: once, in manifest order.
            if !b.started && j < i {
                continue;
            }
            let mut footprint = b.task_files.clone();
            footprint.extend(b.changed.iter().cloned());
            let files = git::overlapping_paths(&a.task_files, &footprint);
            pairs.push(Pair {
                a: a.name.clone(),
                b: b.name.clone(),
                a_branch: None,
                b_branch: b.started.then(|| b.branch.clone()),
                with_target: false,
                kind: Kind::Predicted,
                conflict: !files.is_empty(),
                files,
            });
        }
    }
    Ok(pairs)
}

fn label(p: &Pair) -> String {
    if p.with_target {
        format!("{} → {}", p.a, p.b)
    } else {
        format!("{} ↔ {}", p.a, p.b)
    }
}

/// The text report: conflicting pairs with their files, predicted overlaps, then the clean pairs
/// in one line.
fn render(target: &str, sides: &[PlanSide], pairs: &[Pair]) -> String {
    let mut out = Vec::new();
    let selected: Vec<&PlanSide> = sides.iter().filter(|s| s.selected).collect();
    let started = selected.iter().filter(|s| s.started).count();
    let waiting: Vec<&str> = selected
        .iter()
        .filter(|s| !s.started)
        .map(|s| s.name.as_str())
        .collect();
    let mut head = format!(
        "target `{target}`; {started} plan branch{}",
        if started == 1 { "" } else { "es" }
    );
    if !waiting.is_empty() {
        head.push_str(&format!("; not started: {}", waiting.join(", ")));
    }
    out.push(head);

    let of = |kind| -> Vec<&Pair> {
        let found = pairs
            .iter()
            .filter(|p| p.kind == kind && !p.files.is_empty());
        found.collect()
    };
    let (conflicts, predicted) = (of(Kind::Merge), of(Kind::Predicted));
    let clean: Vec<String> = pairs
        .iter()
        .filter(|p| p.files.is_empty())
        .map(label)
        .collect();
    for (list, what) in [
        (&conflicts, "CONFLICTS ({}; git's merge, nothing written):"),
        (
            &predicted,
            "predicted ({}; plans not started, by the files their tasks name):",
        ),
    ] {
        if !list.is_empty() {
            out.push(String::new());
            out.push(what.replace("{}", &list.len().to_string()));
            for p in list {
                out.push(format!(
                    "  {}: {}",
                    label(p),
                    crate::diagnostic::path_list(&p.files, usize::MAX)
                ));
            }
        }
    }
    out.push(String::new());
    if pairs.is_empty() {
        out.push("nothing to compare: no plan has a branch or names files yet".into());
    } else if clean.is_empty() {
        out.push("no pair without conflicts".into());
    } else {
        const SHOWN: usize = 8;
        let n = clean.len();
        let shown = clean[..n.min(SHOWN)].join(", ");
        let more = if n > SHOWN {
            format!(", and {} more", n - SHOWN)
        } else {
            String::new()
        };
        let s = if n == 1 { "" } else { "s" };
        out.push(format!("no conflicts: {n} pair{s} ({shown}{more})"));
    }
    out.join("\n")
}
