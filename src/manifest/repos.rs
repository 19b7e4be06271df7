//! Several repositories, one manifest: the `[[repo]]` tables, a plan's `repo` and `land_with`,
//! `[defaults] verify_all`, and the order of the repositories that the plans' dependencies make
//! (which must have no cycle: their targets move in that order when they land together).
//!
//! What can be checked from the text is checked here; whether a `path` is a git repository is
//! the workspace's to check (`crate::workspace`), since the manifest does not open repositories.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::model::{PlanEntry, RepoEntry};
use super::names::{check_plan_name, check_ref_name};
use super::raw::{RawManifest, RawPlan};
use super::spans::{At, Bad, Reporter, Strings};
use super::values::argv;

/// The name the home repository (the one `plans.toml` is in) goes by: in `ORCH_REPO_HOME`, in
/// `orch status`, and where a `[[repo]]` may not take it.
pub(crate) const HOME: &str = "home";

/// The environment variable naming repository `name`'s checkout: `ORCH_REPO_` and the name
/// upper-cased, every character other than an ASCII letter or digit made `_`.
pub(crate) fn env_var(name: &str) -> String {
    let tail: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("ORCH_REPO_{tail}")
}

/// The `[[repo]]` tables, checked: names (valid, not `home`, not twice, not two names whose
/// variables are the same), paths (given, a directory), targets, `verify`.
pub(crate) fn repos(
    raw: &RawManifest,
    root: &Path,
    default_target: &str,
    r: &mut Reporter<'_>,
) -> Vec<RepoEntry> {
    let mut out = Vec::new();
    // name -> line of its first definition; variable -> (name, line).
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut vars: HashMap<String, (String, usize)> = HashMap::new();
    let mut paths: HashMap<PathBuf, (String, usize)> = HashMap::new();
    for At { value: repo, span } in &raw.repo {
        let Some(name) = &repo.name else {
            r.error_hint(span, "this `[[repo]]` has no `name`", "add name = \"...\"");
            continue;
        };
        let (line, _) = r.line_col(&name.span);
        let mut ok = true;
        if let Err(why) = check_plan_name(&name.value) {
            let why = why.replacen("plan name", "repository name", 1);
            r.error(&name.span, why);
            ok = false;
        } else if name.value == HOME {
            r.error_hint(
                &name.span,
                format!("repository name `{HOME}` is the repository of plans.toml"),
                "plans without `repo` change that repository; give this one another name",
            );
            ok = false;
        }
        if let Some(first) = seen.get(&name.value) {
            r.error(
                &name.span,
                format!(
                    "duplicate repository name `{}` (first defined at line {first})",
                    name.value
                ),
            );
            ok = false;
        } else {
            seen.insert(name.value.clone(), line);
            let var = env_var(&name.value);
            if let Some((other, other_line)) = vars.get(&var) {
                r.error_hint(
                    &name.span,
                    format!(
                        "repository `{}` and repository `{other}` (line {other_line}) would both be named by `{var}`",
                        name.value
                    ),
                    "names differing only in case or punctuation share their variable; rename one",
                );
                ok = false;
            } else {
                vars.insert(var, (name.value.clone(), line));
            }
        }
        let target = match &repo.target {
            None => default_target.to_string(),
            Some(At { value, span }) => {
                if let Err(why) = check_ref_name(value) {
                    r.error(
                        span,
                        format!(
                            "`target` `{value}` of repository `{}` is not a valid branch name: {why}",
                            name.value
                        ),
                    );
                    ok = false;
                }
                value.clone()
            }
        };
        let verify = argv(r, "repo.verify", repo.verify.as_ref());
        if repo.verify.is_some() && verify.is_none() {
            ok = false;
        }
        let (abs_path, path, path_span) = match &repo.path {
            None => {
                r.error_hint(
                    &name.span,
                    format!("repository `{}` has no `path`", name.value),
                    "add path = \"../NAME\": a local clone, relative to plans.toml",
                );
                continue;
            }
            Some(At { value, span }) if value.trim().is_empty() => {
                r.error(
                    span,
                    format!("`path` of repository `{}` is empty", name.value),
                );
                continue;
            }
            Some(At { value, span }) => (normalize(&root.join(value)), value, span),
        };
        let (pline, pcol) = r.line_col(path_span);
        match std::fs::metadata(&abs_path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                r.error(
                    path_span,
                    format!(
                        "`path` `{path}` of repository `{}` is not a directory",
                        name.value
                    ),
                );
                ok = false;
            }
            Err(_) => {
                r.error_hint(
                    path_span,
                    format!(
                        "`path` `{path}` of repository `{}` does not exist ({})",
                        name.value,
                        abs_path.display()
                    ),
                    "clone the repository there, or give the path of its clone relative to plans.toml",
                );
                ok = false;
            }
        }
        let key = abs_path.canonicalize().unwrap_or_else(|_| abs_path.clone());
        if key == root.canonicalize().unwrap_or_else(|_| root.to_path_buf()) {
            r.error_hint(
                path_span,
                format!(
                    "repository `{}` is the repository of plans.toml itself",
                    name.value
                ),
                "plans without `repo` change that repository; remove this `[[repo]]`",
            );
            ok = false;
        } else if let Some((other, other_line)) = paths.get(&key) {
            r.error(
                path_span,
                format!(
                    "repository `{}` has the path of repository `{other}` (line {other_line})",
                    name.value
                ),
            );
            ok = false;
        } else {
            paths.insert(key, (name.value.clone(), line));
        }
        if ok {
            out.push(RepoEntry {
                name: name.value.clone(),
                path: PathBuf::from(path),
                abs_path,
                target,
                verify,
                line: pline,
                column: pcol,
            });
        }
    }
    out
}

/// `..` and `.` taken out of an absolute path, without the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `[defaults] verify_all`: an argv, or `None`.
pub(crate) fn verify_all(r: &mut Reporter<'_>, at: &Strings) -> Option<Vec<String>> {
    let At { value, span } = at.as_ref()?;
    if value.is_empty() {
        r.error_hint(
            span,
            "`defaults.verify_all` must not be empty",
            "remove the key, or give an argv such as [\"sh\", \"ci/all.sh\"]",
        );
        return None;
    }
    if value[0].value.trim().is_empty() {
        r.error(
            &value[0].span,
            "the program of `defaults.verify_all` must not be empty",
        );
        return None;
    }
    Some(value.iter().map(|a| a.value.clone()).collect())
}

/// A plan's `repo`: a name of `repos`, else an error at the value. `None` is the home
/// repository.
pub(crate) fn plan_repo(
    r: &mut Reporter<'_>,
    plan: &str,
    at: Option<&At<String>>,
    repos: &[RepoEntry],
    raw_names: &BTreeSet<String>,
) -> Option<String> {
    let At { value, span } = at?;
    if value == HOME {
        return None;
    }
    if !repos.iter().any(|x| &x.name == value) {
        // A repository whose table was bad is reported there, not again here.
        if !raw_names.contains(value) {
            let known: Vec<String> = std::iter::once(format!("`{HOME}`"))
                .chain(repos.iter().map(|x| format!("`{}`", x.name)))
                .collect();
            r.bad(
                span,
                Bad::new(format!("plan `{plan}` names unknown repository `{value}`")).hint(
                    format!(
                        "define it in a `[[repo]]` table, or use one of: {}",
                        known.join(", ")
                    ),
                ),
            );
        }
        return None;
    }
    Some(value.clone())
}

/// The names of the `[[repo]]` tables as written (good or bad).
pub(crate) fn raw_names(raw: &RawManifest) -> BTreeSet<String> {
    raw.repo
        .iter()
        .filter_map(|t| t.value.name.as_ref().map(|n| n.value.clone()))
        .collect()
}

/// Each plan's `land_with`, checked against the plans' names, and the cross-repository
/// dependency cycles, reported at a `depends_on` entry that closes one.
pub(crate) fn check_plans(raw: &[At<RawPlan>], plans: &mut [PlanEntry], r: &mut Reporter<'_>) {
    let names: BTreeSet<String> = plans.iter().map(|p| p.name.clone()).collect();
    for At { value: plan, .. } in raw {
        let Some(name) = &plan.name else { continue };
        let Some(index) = plans.iter().position(|p| p.name == name.value) else {
            continue;
        };
        let Some(list) = &plan.land_with else {
            continue;
        };
        let mut with = Vec::new();
        for item in &list.value {
            if item.value == name.value {
                r.error(
                    &item.span,
                    format!("plan `{}` lands with itself", name.value),
                );
            } else if !names.contains(&item.value) {
                r.error(
                    &item.span,
                    format!(
                        "plan `{}` lands with unknown plan `{}`",
                        name.value, item.value
                    ),
                );
            } else if !with.contains(&item.value) {
                with.push(item.value.clone());
            }
        }
        plans[index].land_with = with;
    }
    repository_cycles(plans, r);
}

/// The repository a plan changes, as a name (`home` for the manifest's).
pub(crate) fn repo_name(plan: &PlanEntry) -> &str {
    plan.repo.as_deref().unwrap_or(HOME)
}

/// The repositories' order from the plans' dependencies (an upstream's repository before its
/// dependent's) must have no cycle: a dependency that closes one is an error at its entry.
fn repository_cycles(plans: &[PlanEntry], r: &mut Reporter<'_>) {
    // repo -> repos it waits for, with the first dependency that says so.
    let mut edges: BTreeMap<&str, BTreeMap<&str, (&PlanEntry, usize)>> = BTreeMap::new();
    for p in plans {
        for (i, d) in p.depends_on.iter().enumerate() {
            let Some(up) = plans.iter().find(|u| u.name == d.plan) else {
                continue;
            };
            let (from, to) = (repo_name(p), repo_name(up));
            if from != to {
                edges.entry(from).or_default().entry(to).or_insert((p, i));
            }
        }
    }
    // Each edge whose target reaches back to its source closes a cycle.
    for (from, tos) in &edges {
        for (to, (plan, i)) in tos {
            if let Some(path) = reach(&edges, to, from) {
                let d = &plan.depends_on[*i];
                let mut cycle = vec![*from];
                cycle.extend(path);
                let shown: Vec<String> = cycle.iter().map(|x| format!("`{x}`")).collect();
                r.diagnostics.push(
                    crate::diagnostic::Diagnostic::error(
                        r.path,
                        d.line,
                        format!(
                            "plan `{}` (repository `{from}`) depends on `{}` (repository `{to}`), which makes a cycle of repositories: {}",
                            plan.name,
                            d.raw,
                            shown.join(" waits for ")
                        ),
                    )
                    .with_column(d.column)
                    .with_hint("repositories land in the order their plans' dependencies give; move one of these plans, or drop a dependency"),
                );
                // One report per cycle's closing edge is enough.
                return;
            }
        }
    }
}

/// A path of repositories from `start` to `goal` (both included) along `edges`, if any.
fn reach<'a>(
    edges: &BTreeMap<&'a str, BTreeMap<&'a str, (&PlanEntry, usize)>>,
    start: &'a str,
    goal: &str,
) -> Option<Vec<&'a str>> {
    let mut stack = vec![vec![start]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = *path.last()?;
        if last == goal {
            return Some(path);
        }
        if !seen.insert(last) {
            continue;
        }
        for next in edges.get(last).into_iter().flat_map(BTreeMap::keys) {
            let mut longer = path.clone();
            longer.push(next);
            stack.push(longer);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_name_repositories() {
        assert_eq!(env_var("api"), "ORCH_REPO_API");
        assert_eq!(env_var("web-client.v2"), "ORCH_REPO_WEB_CLIENT_V2");
        assert_eq!(env_var("home"), "ORCH_REPO_HOME");
    }

    #[test]
    fn paths_are_normalized_lexically() {
        assert_eq!(
            normalize(Path::new("/a/b/../api/./x")),
            PathBuf::from("/a/api/x")
        );
    }
}
