//! Where the code of plans that run in containers runs after their attempts: the image (and
//! services) of each such plan, and the one image a combination of plans (the integration
//! preview, a group's landing, a resolution against the group's candidate) is verified in. The
//! code of a plan whose agents run in a container never runs on this machine: a combination with
//! one runs in a container of its image (with the services of its container plans), and one
//! whose container plans name different images (or one whose image cannot be read) is not run
//! at all.

use std::collections::BTreeMap;

use super::PlanImage;
use crate::manifest::{ExecutorKind, Manifest};

/// The image and services of each plan of a manifest that runs in a container, or why it has
/// no image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Images(BTreeMap<String, Result<PlanImage, String>>);

/// The image of each plan of `manifest` that runs in a container: its `image`, else its
/// repository's dev container's, else why there is none (`orch up` refuses such a plan at
/// start; a verify of its work is refused too, never run on this machine).
pub(crate) fn images(manifest: &Manifest) -> Images {
    Images(
        manifest
            .plans
            .iter()
            .filter(|p| p.executor == ExecutorKind::Container)
            .map(|p| {
                let image = match &p.image {
                    Some(i) => Ok(i.clone()),
                    None => super::devcontainer::image(&manifest.root),
                };
                let services = manifest.services_of(p).into_iter().cloned().collect();
                (
                    p.name.clone(),
                    image.map(|image| PlanImage { image, services }),
                )
            })
            .collect(),
    )
}

impl Images {
    /// Whether plan `plan` runs in a container.
    pub(crate) fn contains(&self, plan: &str) -> bool {
        self.0.contains_key(plan)
    }

    /// The image a command on the work of `plans` runs in: `None` when none of them runs in a
    /// container (it runs on this machine), the image of those that do when they share one,
    /// with each of their services (a `[[service]]` named by several, once), else why it cannot
    /// run anywhere (naming the plans and their images).
    pub(crate) fn of<S: AsRef<str>>(&self, plans: &[S]) -> Result<Option<PlanImage>, String> {
        let mut named: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut services: Vec<crate::manifest::Service> = Vec::new();
        for p in plans {
            let p = p.as_ref();
            match self.0.get(p) {
                None => {}
                Some(Err(why)) => {
                    return Err(format!(
                        "plan `{p}` runs in a container whose image is not known ({why}): the code of its work runs nowhere else"
                    ));
                }
                Some(Ok(place)) => {
                    let of = named.entry(place.image.as_str()).or_default();
                    if !of.contains(&p) {
                        of.push(p);
                    }
                    for s in &place.services {
                        if !services.iter().any(|had| had.name == s.name) {
                            services.push(s.clone());
                        }
                    }
                }
            }
        }
        match named.len() {
            0 => Ok(None),
            1 => Ok(named.into_keys().next().map(|image| PlanImage {
                image: image.to_string(),
                services,
            })),
            _ => {
                let each: Vec<String> = named
                    .iter()
                    .map(|(image, plans)| {
                        let plans: Vec<String> = plans.iter().map(|p| format!("`{p}`")).collect();
                        format!("{} in `{image}`", plans.join(", "))
                    })
                    .collect();
                Err(format!(
                    "the plans run in containers of different images ({}): the code of one would run in the image of another, so their combination is not run",
                    each.join("; ")
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(of: &[(&str, Result<&str, &str>)]) -> Images {
        Images(
            of.iter()
                .map(|(p, i)| {
                    let place = i
                        .map(|image| PlanImage {
                            image: image.to_string(),
                            services: Vec::new(),
                        })
                        .map_err(str::to_string);
                    ((*p).to_string(), place)
                })
                .collect(),
        )
    }

    /// The image `of` chose, if any.
    fn image(of: Result<Option<PlanImage>, String>) -> Result<Option<String>, String> {
        of.map(|p| p.map(|p| p.image))
    }

    #[test]
    fn a_combination_runs_in_the_one_image_of_its_container_plans() {
        let m = images(&[
            ("a", Ok("img:1")),
            ("b", Ok("img:1")),
            ("c", Ok("other:2")),
            ("d", Err("no `image` is set")),
        ]);
        // Plans run on this machine alone: here.
        assert_eq!(m.of(&["local", "x"]), Ok(None));
        assert_eq!(m.of::<&str>(&[]), Ok(None));
        // One container plan, with plans run here or of the same image: its image.
        assert_eq!(image(m.of(&["a"])), Ok(Some("img:1".to_string())));
        assert_eq!(image(m.of(&["local", "a"])), Ok(Some("img:1".to_string())));
        assert_eq!(
            image(m.of(&["a", "b", "local"])),
            Ok(Some("img:1".to_string()))
        );
        // Two images: refused, naming each plan and image.
        let why = m.of(&["a", "local", "c", "b"]).expect_err("two images");
        assert!(
            why.contains("`a`, `b` in `img:1`") && why.contains("`c` in `other:2`"),
            "{why}"
        );
        // An image that cannot be read: refused, never here.
        let why = m.of(&["local", "d"]).expect_err("no image");
        assert!(
            why.contains("plan `d`") && why.contains("no `image`"),
            "{why}"
        );
        assert!(m.contains("d") && !m.contains("local"));
    }

    #[test]
    fn a_combination_runs_with_the_services_of_each_of_its_container_plans_once() {
        let dir = tempfile::tempdir().expect("dir");
        for f in ["a", "b", "c", "here"] {
            std::fs::write(
                dir.path().join(format!("{f}.md")),
                "# P\n\n## Phase 1: W\n- [ ] 1.1 x\n",
            )
            .expect("plan");
        }
        let m = crate::manifest::parse_str(
            &dir.path().join("plans.toml"),
            "[[service]]\nname = \"db\"\nimage = \"localhost/pg:16\"\n\n\
             [[service]]\nname = \"cache\"\ncommand = [\"redis-server\"]\nport = 6379\n\n\
             [defaults]\nagent = \"claude\"\nexecutor = \"container\"\nimage = \"img:1\"\n\n\
             [[plan]]\nname = \"a\"\nfile = \"a.md\"\nservices = [\"db\"]\n\n\
             [[plan]]\nname = \"b\"\nfile = \"b.md\"\nservices = [\"cache\", \"db\"]\n\n\
             [[plan]]\nname = \"c\"\nfile = \"c.md\"\nimage = \"img:2\"\n\n\
             [[plan]]\nname = \"here\"\nfile = \"here.md\"\nexecutor = \"local\"\nservices = []\n",
        )
        .expect("manifest");
        let all = super::images(&m);
        let place = all
            .of(&["here", "a", "b"])
            .expect("one image")
            .expect("in a container");
        assert_eq!(place.image, "img:1");
        let names: Vec<&str> = place.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "cache"]);
        assert_eq!(all.of(&["here"]), Ok(None));
        let why = all.of(&["a", "c"]).expect_err("two images");
        assert!(
            why.contains("`a` in `img:1`") && why.contains("`c` in `img:2`"),
            "{why}"
        );
    }
}
