//! `orch pr`: finished plans handed to review as stacked pull requests, through `git push` and
//! the GitHub CLI (`gh`).
//!
//! Each plan's branch is pushed to the remote; its pull request's base is the branch of the plan
//! it depends on while that plan is not merged into the target (a stack), else the target. Plans
//! go in dependency order (upstream first), so a base is always pushed before the pull request
//! that uses it. A pull request that exists already (`gh pr list --head BRANCH`) is updated with
//! `gh pr edit`, its base moved when the upstream plan has merged meanwhile. The first command
//! that fails stops the run: its error names the plan and the command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::anyhow;
use serde_json::Value;

use super::plan_info::{PlanInfo, plan_infos, upstream_landed};
use super::short;
use crate::error::{CliError, CliResult, exit};
use crate::manifest::Manifest;
use crate::status::{StatusDoc, TaskStatus};
use crate::workspace::{self, Workspace};

/// What one plan of an `orch pr` run got (or, with `--dry-run`, would get).
#[derive(Clone, Debug, Default)]
pub(crate) struct PrStep {
    pub(crate) plan: String,
    pub(crate) branch: String,
    /// The pull request's base branch (empty for a skipped plan).
    pub(crate) base: String,
    /// `created`, `updated`, `would_create`, `would_update` or `skipped`.
    pub(crate) action: &'static str,
    /// The pull request's number, when known.
    pub(crate) number: Option<u64>,
    /// The pull request's address, when known.
    pub(crate) url: Option<String>,
    /// The base before `gh pr edit` moved it.
    pub(crate) base_before: Option<String>,
    /// Why a plan was skipped.
    pub(crate) reason: Option<String>,
    /// The commands run (or, with `--dry-run`, to be run), as argv.
    pub(crate) commands: Vec<Vec<String>>,
    /// The pull request's body.
    pub(crate) body: String,
}

/// One `orch pr` run over the plans of a manifest.
pub(crate) struct PrRun<'a> {
    ws: &'a Workspace,
    manifest: &'a Manifest,
    repo_root: PathBuf,
    infos: Vec<PlanInfo>,
    docs: Vec<StatusDoc>,
    /// The plans of the run (indices into `infos`), upstream plans first.
    pub(crate) order: Vec<usize>,
    /// Plans named on the command line that landed already: no pull request.
    pub(crate) landed: Vec<usize>,
    pub(crate) remote: String,
    pub(crate) target: String,
}

/// A pull request that exists, from `gh pr list`.
struct Existing {
    number: u64,
    url: Option<String>,
    base: Option<String>,
}

impl<'a> PrRun<'a> {
    /// The plans of the run: the named ones (unknown names exit 2, an unfinished one is refused
    /// with exit 4), or every finished plan with a branch that is not merged yet.
    pub(crate) fn plan(
        ws: &'a Workspace,
        manifest: &'a Manifest,
        names: &[String],
    ) -> CliResult<Self> {
        let repo_root = workspace::repo_root(manifest)?;
        let target = manifest.defaults.target.clone();
        let infos = plan_infos(ws, manifest, &repo_root)?;
        let docs = workspace::read_statuses(ws, None)?;
        let mut chosen = Vec::new();
        let mut landed = Vec::new();
        if names.is_empty() {
            for p in &infos {
                if p.unfinished.is_empty() && p.tip.is_some() && p.landed.is_none() {
                    chosen.push(p.index);
                }
            }
        } else {
            let mut refusals = Vec::new();
            // `infos` are the workspace's plans, in its order.
            for p in ws.select(names)?.into_iter().map(|i| &infos[i]) {
                if let Some(refusal) = p.not_finished() {
                    refusals.push(refusal);
                } else if p.tip.is_none() {
                    refusals.push(format!(
                        "plan `{}` has no branch `{}`",
                        p.name(),
                        p.branch()
                    ));
                } else if p.landed.is_some() {
                    landed.push(p.index);
                } else {
                    chosen.push(p.index);
                }
            }
            if !refusals.is_empty() {
                return Err(CliError::new(
                    exit::REFUSED,
                    anyhow!("{}; no pull request was opened", refusals.join("; ")),
                )
                .with_hint("finish the plan first (`orch up PLAN`), or leave it out"));
            }
        }
        let order = super::in_merge_order(&infos, &chosen);
        Ok(Self {
            ws,
            manifest,
            repo_root,
            infos,
            docs,
            order,
            landed,
            remote: manifest.defaults.remote.clone(),
            target,
        })
    }

    /// Pushes and opens or updates each plan's pull request in order (with `dry_run`, only
    /// `gh pr list` runs), calling `report` after each plan. The first failing command stops the
    /// run with an error naming the plan and the command.
    pub(crate) fn run(
        &self,
        dry_run: bool,
        mut report: impl FnMut(&PrStep),
    ) -> CliResult<Vec<PrStep>> {
        let mut steps = Vec::new();
        for &i in &self.landed {
            let p = &self.infos[i];
            let step = PrStep {
                plan: p.name().to_owned(),
                branch: p.branch().to_owned(),
                action: "skipped",
                reason: Some(format!(
                    "already merged into `{}` ({})",
                    self.manifest.target_of(&p.entry),
                    p.landed.as_deref().unwrap_or_default()
                )),
                ..PrStep::default()
            };
            report(&step);
            steps.push(step);
        }
        // Branches pushed in this run (a base outside the run is pushed once, before its user).
        let mut pushed: Vec<(PathBuf, String)> = Vec::new();
        let mut links: HashMap<String, String> = HashMap::new();
        let mut done = Vec::new();
        for &i in &self.order {
            let step = self.one(i, dry_run, &mut pushed, &links)?;
            if let Some(url) = &step.url {
                links.insert(step.plan.clone(), url.clone());
            }
            done.push((i, step));
        }
        // The pull requests of a group of several repositories link one another: those opened
        // before the others of their group get a body with every link.
        for (i, mut step) in done {
            if !dry_run && self.group_of(i).len() > 1 {
                self.relink(i, &mut step, &links)?;
            }
            report(&step);
            steps.push(step);
        }
        Ok(steps)
    }

    /// The work dir of plan `i`'s repository.
    fn root_of(&self, i: usize) -> PathBuf {
        workspace::repos::root_of(self.manifest, &self.infos[i].entry, &self.repo_root)
    }

    /// The target branch of plan `i`'s repository.
    fn target_of(&self, i: usize) -> String {
        self.manifest.target_of(&self.infos[i].entry).to_string()
    }

    /// The plans plan `i` lands with (itself included), in the order their repositories'
    /// targets move, each with its repository; just itself when it lands alone.
    fn group_of(&self, i: usize) -> Vec<(String, String)> {
        let name = self.infos[i].name().to_string();
        let (groups, _) = super::together::groups(self.manifest, std::slice::from_ref(&name));
        let Some(g) = groups.into_iter().find(|g| g.plans.contains(&name)) else {
            return vec![(name, crate::manifest::HOME_REPO.to_string())];
        };
        g.repos
            .iter()
            .flat_map(|r| {
                g.plans_of(self.manifest, r)
                    .into_iter()
                    .map(|p| (p.name.clone(), r.clone()))
            })
            .collect()
    }

    /// Plan `i`'s pull request's body written again with the links of every other of its
    /// group (`gh pr edit N --body-file`, in its repository).
    fn relink(
        &self,
        i: usize,
        step: &mut PrStep,
        links: &HashMap<String, String>,
    ) -> CliResult<()> {
        let Some(number) = step.number else {
            return Ok(());
        };
        let (_, deps) = self.base_of(i)?;
        let body = self.body(i, &deps, links);
        if body == step.body {
            return Ok(());
        }
        let p = &self.infos[i];
        let body_file = self.body_file(p.name());
        write_body(&body_file, &body).map_err(|e| {
            CliError::new(
                exit::FAILURE,
                anyhow!(
                    "plan `{}`: cannot write the pull request body `{}`: {e}",
                    p.name(),
                    body_file.display()
                ),
            )
        })?;
        let edit = argv(&[
            "gh",
            "pr",
            "edit",
            &number.to_string(),
            "--body-file",
            &body_file.display().to_string(),
        ]);
        self.exec(&self.root_of(i), p.name(), &edit)?;
        step.commands.push(edit);
        step.body = body;
        Ok(())
    }

    /// The base of plan `i` and the plans it depends on, each with how it stands.
    fn base_of(&self, i: usize) -> CliResult<(String, Vec<(String, String)>)> {
        let p = &self.infos[i];
        let by_name: HashMap<&str, &PlanInfo> = self.infos.iter().map(|p| (p.name(), p)).collect();
        let mut base = None;
        let mut deps = Vec::new();
        let (root, target) = (self.root_of(i), self.target_of(i));
        for u in &p.upstreams {
            let Some(up) = by_name.get(u.as_str()) else {
                continue;
            };
            if up.entry.repo != p.entry.repo {
                // A plan of another repository is never a base: its pull request is in its own
                // repository, and lands with this one (see the body's "Lands together").
                let repo = up
                    .entry
                    .repo
                    .as_deref()
                    .unwrap_or(crate::manifest::HOME_REPO);
                deps.push((
                    u.clone(),
                    format!("a plan of repository `{repo}` (branch `{}`)", up.branch()),
                ));
                continue;
            }
            let merged = upstream_landed(up, &root, &target).map_err(|e| {
                CliError::coded(e).with_hint(format!("while reading plan `{}`", p.name()))
            })?;
            if merged {
                deps.push((u.clone(), format!("merged into `{target}`")));
            } else if base.is_none() {
                base = Some(up.branch().to_owned());
                deps.push((
                    u.clone(),
                    format!(
                        "not merged yet: this pull request's base is `{}`",
                        up.branch()
                    ),
                ));
            } else {
                deps.push((
                    u.clone(),
                    format!("not merged yet (branch `{}`)", up.branch()),
                ));
            }
        }
        Ok((base.unwrap_or(target), deps))
    }

    fn one(
        &self,
        i: usize,
        dry_run: bool,
        pushed: &mut Vec<(PathBuf, String)>,
        links: &HashMap<String, String>,
    ) -> CliResult<PrStep> {
        let p = &self.infos[i];
        // Each plan's push and pull request in its own repository.
        let (root, target) = (self.root_of(i), self.target_of(i));
        let (base, deps) = self.base_of(i)?;
        let body = self.body(i, &deps, links);
        // The plan's title is a landed plan file's text: one line, control characters escaped.
        let title = format!(
            "{}: {}",
            p.name(),
            crate::untrusted::Shown(self.ws.plans[p.index].plan.title.trim())
        );
        let mut commands = Vec::new();
        let push = |branch: &str| {
            let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
            argv(&["git", "push", &self.remote, &refspec])
        };
        // A base that is a plan branch outside the run (an unfinished upstream plan) must exist
        // on the remote before the pull request can use it.
        if base != target
            && !pushed.contains(&(root.clone(), base.clone()))
            && !self
                .order
                .iter()
                .any(|&j| self.infos[j].branch() == base && self.root_of(j) == root)
        {
            commands.push(push(&base));
        }
        commands.push(push(p.branch()));
        if !dry_run {
            for argv in &commands {
                self.exec(&root, p.name(), argv)?;
            }
        }
        for argv in &commands {
            pushed.push((
                root.clone(),
                argv[3]
                    .rsplit(':')
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("refs/heads/")
                    .to_string(),
            ));
        }
        let list = [
            argv(&["gh", "pr", "list", "--head", p.branch(), "--state", "open"]),
            argv(&["--json", "number,url,baseRefName"]),
        ]
        .concat();
        // A dry run goes on without `gh` (not installed, not logged in): it cannot tell an
        // update from a new pull request then, and says so.
        let mut note = None;
        let listed = if dry_run {
            self.output(&root, &list).unwrap_or_else(|why| {
                note = Some(format!(
                    "`gh pr list` could not run ({why}): if a pull request is open for the branch, `orch pr` updates it instead"
                ));
                "[]".to_string()
            })
        } else {
            self.exec(&root, p.name(), &list)?
        };
        commands.push(list.clone());
        let existing = parse_list(&listed).map_err(|e| {
            CliError::new(
                exit::FAILURE,
                anyhow!(
                    "plan `{}`: `{}` printed what is not a list of pull requests: {e}",
                    p.name(),
                    shown(&list)
                ),
            )
        })?;
        let body_file = self.body_file(p.name());
        if !dry_run {
            write_body(&body_file, &body).map_err(|e| {
                CliError::new(
                    exit::FAILURE,
                    anyhow!(
                        "plan `{}`: cannot write the pull request body `{}`: {e}",
                        p.name(),
                        body_file.display()
                    ),
                )
            })?;
        }
        let body_arg = body_file.display().to_string();
        let mut step = PrStep {
            plan: p.name().to_owned(),
            branch: p.branch().to_owned(),
            base: base.clone(),
            reason: note,
            commands,
            body,
            ..PrStep::default()
        };
        match existing {
            Some(pr) => {
                let number = pr.number.to_string();
                let edit = [
                    argv(&["gh", "pr", "edit", &number, "--base", &base, "--title"]),
                    argv(&[&title, "--body-file", &body_arg]),
                ]
                .concat();
                if !dry_run {
                    self.exec(&root, p.name(), &edit)?;
                }
                step.commands.push(edit);
                step.action = if dry_run { "would_update" } else { "updated" };
                step.number = Some(pr.number);
                step.url = pr.url;
                step.base_before = pr.base.filter(|b| *b != base);
            }
            None => {
                let create = [
                    argv(&["gh", "pr", "create", "--base", &base, "--head", p.branch()]),
                    argv(&["--title", &title, "--body-file", &body_arg]),
                ]
                .concat();
                if !dry_run {
                    let out = self.exec(&root, p.name(), &create)?;
                    step.url = out
                        .lines()
                        .map(str::trim)
                        .rfind(|l| l.starts_with("http"))
                        .map(str::to_string);
                    step.number = step
                        .url
                        .as_deref()
                        .and_then(|u| u.rsplit('/').next())
                        .and_then(|n| n.parse().ok());
                }
                step.commands.push(create);
                step.action = if dry_run { "would_create" } else { "created" };
            }
        }
        Ok(step)
    }

    /// Where the body of a plan's pull request is written: next to its status file.
    fn body_file(&self, plan: &str) -> PathBuf {
        self.manifest
            .state_path(plan)
            .with_file_name("pull-request.md")
    }

    /// The pull request's body: the plan's tasks with their commits, its checks, the plans it
    /// depends on.
    fn body(&self, i: usize, deps: &[(String, String)], links: &HashMap<String, String>) -> String {
        let p = &self.infos[i];
        let target = self.target_of(i);
        let lp = &self.ws.plans[p.index];
        let doc = &self.docs[p.index];
        let mut out = format!(
            "Plan `{}` (`{}`), branch `{}`, opened by `orch pr`.\n\n",
            p.name(),
            markdown(&lp.rel_path),
            p.branch()
        );
        out.push_str("## Depends on\n\n");
        if deps.is_empty() {
            out.push_str("No other plan.\n");
        }
        for (name, how) in deps {
            out.push_str(&format!("- `{name}`: {}\n", markdown(how)));
        }
        let group = self.group_of(i);
        if group.len() > 1 {
            out.push_str("\n## Lands together\n\n");
            out.push_str(
                "These pull requests land all together or not at all (`orch merge` lands them so). Merge them in this order:\n\n",
            );
            for (n, (name, repo)) in group.iter().enumerate() {
                let me = if *name == p.name() { " (this one)" } else { "" };
                let link = links
                    .get(name)
                    .map(|u| format!(": {}", markdown(u)))
                    .unwrap_or_default();
                out.push_str(&format!(
                    "{}. `{name}` in repository `{repo}`{me}{link}\n",
                    n + 1
                ));
            }
        }
        out.push_str("\n## Tasks\n\n");
        for t in &doc.tasks {
            out.push_str(&format!("- {}\n", entry_line(t)));
        }
        out.push_str("\n## Checks\n\n");
        let mut any = false;
        for v in &doc.verify_steps {
            out.push_str(&format!("- {}\n", entry_line(v)));
            any = true;
        }
        if let Some(verify) = &self.manifest.defaults.verify {
            out.push_str(&format!(
                "- `{}` runs on the merge result before `{}` moves (`orch merge`)\n",
                markdown(&super::verify::shown(verify)),
                target
            ));
            any = true;
        }
        if !any {
            out.push_str("None.\n");
        }
        out
    }

    /// Runs `argv` in the repository; its stdout, or an error naming the plan and the command.
    fn exec(&self, root: &Path, plan: &str, argv: &[String]) -> CliResult<String> {
        self.output(root, argv).map_err(|why| {
            let e = CliError::new(
                exit::FAILURE,
                anyhow!(
                    "plan `{plan}`: `{}` failed: {why}; later plans were not handled",
                    shown(argv)
                ),
            );
            if argv[0] == "gh" && why.starts_with("cannot run") {
                e.with_hint(
                    "install the GitHub CLI (https://cli.github.com) and run `gh auth login`",
                )
            } else {
                e
            }
        })
    }

    /// Runs `argv` in the repository: its stdout, or why it failed.
    fn output(&self, root: &Path, argv: &[String]) -> Result<String, String> {
        // git through orch's one runner (the repository named, no hooks or fsmonitor from a
        // config a plan may have brought); `gh` as it is.
        let mut cmd = if argv[0] == "git" && argv.get(1).is_some_and(|a| a == "push") {
            // The transport as you configured it (ssh, a credential helper): not confined to
            // git's programs, as no other run of orch's git is.
            crate::git::git_transport_command(crate::git::GitTarget::WorkTree(root))?
        } else if argv[0] == "git" {
            crate::git::git_command(crate::git::GitTarget::WorkTree(root))?
        } else {
            let mut cmd = crate::agent_env::command(&argv[0]);
            crate::process::place(&mut cmd, root);
            cmd.env_remove("GIT_DIR")
                .env_remove("GIT_WORK_TREE")
                .stdin(Stdio::null());
            cmd
        };
        let out = cmd
            .args(&argv[1..])
            .output()
            .map_err(|e| format!("cannot run `{}`: {e}", argv[0]))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let code = out
                .status
                .code()
                .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}"));
            return Err(format!("{code}: {}", stderr.trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// `parts` as an argv.
fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_string()).collect()
}

/// One task or verification step in a body: `[x] 1.2 description (abc1234567)`.
fn entry_line(t: &crate::status::TaskEntry) -> String {
    let mark = match t.status {
        TaskStatus::Completed => "[x]",
        TaskStatus::Skipped => "[-]",
        _ => "[ ]",
    };
    let mut line = format!(
        "{mark} {} {}",
        markdown(&t.id),
        markdown(t.description.trim())
    );
    if let Some(c) = &t.commit {
        line.push_str(&format!(" ({})", short(c)));
    }
    if t.status == TaskStatus::Skipped {
        line.push_str(&format!(
            " (skipped{})",
            t.skip_reason
                .as_deref()
                .map(|r| format!(": {}", markdown(r)))
                .unwrap_or_default()
        ));
    }
    line
}

/// Text of a plan file or an agent (a task's text, a skip reason) as it goes into a pull
/// request's body: on one line with its control characters shown escaped
/// ([`crate::untrusted::escaped`]), and `<`, `>` and `&` written as entities, so that it cannot
/// open an HTML comment that hides the rest of the body, a `<details>`, or a tag of its own.
/// Markdown of the text itself (`code`, *emphasis*) still renders.
fn markdown(text: &str) -> String {
    crate::untrusted::escaped(text)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn write_body(path: &Path, body: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::links::write(path, body.as_bytes())
}

/// The first pull request `gh pr list --json number,url,baseRefName` printed, if any.
fn parse_list(out: &str) -> Result<Option<Existing>, String> {
    let v: Value = serde_json::from_str(out.trim()).map_err(|e| e.to_string())?;
    let Value::Array(items) = v else {
        return Err("not a JSON array".into());
    };
    let Some(first) = items.first() else {
        return Ok(None);
    };
    let number = first
        .get("number")
        .and_then(Value::as_u64)
        .ok_or("an entry without `number`")?;
    Ok(Some(Existing {
        number,
        url: first.get("url").and_then(Value::as_str).map(str::to_string),
        base: first
            .get("baseRefName")
            .and_then(Value::as_str)
            .map(str::to_string),
    }))
}

pub(crate) use super::verify::shown;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gh_pr_list() {
        assert!(parse_list("[]").expect("list").is_none());
        let pr = parse_list(r#"[{"number":7,"url":"https://x/pull/7","baseRefName":"plan/a"}]"#)
            .expect("list")
            .expect("one");
        assert_eq!(
            (pr.number, pr.url.as_deref(), pr.base.as_deref()),
            (7, Some("https://x/pull/7"), Some("plan/a"))
        );
        assert!(parse_list("{}").is_err());
        assert!(parse_list("oops").is_err());
    }
}
