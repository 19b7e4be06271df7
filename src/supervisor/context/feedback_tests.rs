//! The prompt section of a red integration test ([`super::IntegrationCtx::feedback_for`]): the
//! other plans and the output, only for the plans it names; for a plan that runs in a
//! container, only output of a verify that ran in one.

#[test]
fn integration_feedback_names_the_other_plans_with_the_output_only_for_the_plans_named() {
    use crate::merge::integrate::{
        IntegrationFailure, IntegrationSpec, TriedCommit, VerifyFailure,
    };
    let manifest = crate::manifest::parse_str(
        std::path::Path::new("/r/plans.toml"),
        "[defaults]\nagent = \"claude\"\n",
    )
    .expect("manifest");
    let ctx = |feedback: bool| super::IntegrationCtx {
        spec: IntegrationSpec::from_manifest(&manifest, std::path::Path::new("/r")).expect("spec"),
        interval: std::time::Duration::ZERO,
        feedback,
        integrator: Default::default(),
        failure: std::sync::Mutex::new(Some(IntegrationFailure {
            plans: vec!["lib".into(), "app".into()],
            culprit: "app".into(),
            conflict: None,
            verify: Some(VerifyFailure {
                exit_code: Some(1),
                last_lines: vec!["missing function: greet".into()],
                image: None,
            }),
            commits: vec![TriedCommit {
                plan: Some("lib".into()),
                branch: "plan/lib".into(),
                commit: "abc".into(),
                repo: None,
            }],
            reason: None,
        })),
    };
    let on = ctx(true);
    let text = on.feedback_for("app").expect("named");
    assert!(
        text.starts_with(
            "This plan's commits fail together with the commits of plan `lib` (not merged yet), when merged into `main`."
        ),
        "{text}"
    );
    assert!(text.contains("\n- plan/lib at abc"), "{text}");
    assert!(
        text.contains(&format!(
            "exited with status 1; its last lines{}:\n    missing function: greet",
            super::OTHERS_OUTPUT
        )),
        "{text}"
    );
    assert!(
        on.feedback_for("lib")
            .expect("named")
            .contains("plan `app`")
    );
    assert_eq!(on.feedback_for("docs"), None, "not named");
    assert_eq!(
        ctx(false).feedback_for("app"),
        None,
        "integrate_feedback = false"
    );
    *on.failure.lock().expect("lock") = None;
    assert_eq!(on.feedback_for("app"), None, "green");
}

#[test]
fn a_plan_in_a_container_gets_no_output_of_a_verify_that_ran_on_this_machine() {
    use crate::merge::integrate::{IntegrationFailure, IntegrationSpec, VerifyFailure};
    let dir = tempfile::tempdir().expect("dir");
    for f in ["box", "here"] {
        std::fs::write(
            dir.path().join(format!("{f}.md")),
            "# P\n\n## Phase 1: W\n- [ ] 1.1 x\n",
        )
        .expect("plan");
    }
    let manifest = crate::manifest::parse_str(
        &dir.path().join("plans.toml"),
        "[defaults]\nagent = \"claude\"\nverify = [\"true\"]\n\
         [[plan]]\nname = \"box\"\nfile = \"box.md\"\nexecutor = \"container\"\nimage = \"img:1\"\n\
         [[plan]]\nname = \"here\"\nfile = \"here.md\"\n",
    )
    .expect("manifest");
    let ctx = |image: Option<&str>| super::IntegrationCtx {
        spec: IntegrationSpec::from_manifest(&manifest, dir.path()).expect("spec"),
        interval: std::time::Duration::ZERO,
        feedback: true,
        integrator: Default::default(),
        failure: std::sync::Mutex::new(Some(IntegrationFailure {
            plans: vec!["here".into(), "box".into()],
            culprit: "box".into(),
            conflict: None,
            verify: Some(VerifyFailure {
                exit_code: Some(1),
                last_lines: vec!["root:*:20228:0:99999:7:::".into()],
                image: image.map(str::to_string),
            }),
            commits: Vec::new(),
            reason: None,
        })),
    };
    // Ran on this machine (a cache of an earlier orch): the container plan gets the status
    // only, the plan run here the output.
    let here = ctx(None);
    let text = here.feedback_for("box").expect("named");
    assert!(text.contains("exited with status 1."), "{text}");
    assert!(!text.contains("root:*"), "{text}");
    let text = here.feedback_for("here").expect("named");
    assert!(
        text.contains(&format!(
            "its last lines{}:\n    root:*",
            super::OTHERS_OUTPUT
        )),
        "{text}"
    );
    // Ran in the container: both get it.
    let boxed = ctx(Some("img:1"));
    for plan in ["box", "here"] {
        let text = boxed.feedback_for(plan).expect("named");
        assert!(
            text.contains(&format!(
                "its last lines{}:\n    root:*",
                super::OTHERS_OUTPUT
            )),
            "{plan}: {text}"
        );
    }
}
