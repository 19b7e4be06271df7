use super::*;

const ID: &str = "79a00084-21ad-42b0-9708-8d1bfea83607";
const OTHER: &str = "01a2075f-59ae-7861-8bbd-ad777c6f4923";

fn claude_init(id: &str) -> String {
    format!(r#"{{"type":"system","subtype":"init","cwd":"/w","session_id":"{id}"}}"#)
}

#[test]
fn the_session_is_the_first_event_s_and_a_uuid() {
    let init = claude_init(ID);
    let out = format!(
        "=== orch: confined ===\nsome warning\n{init}\n{}\n",
        claude_init(OTHER)
    );
    assert_eq!(session_in(KnownCli::Claude, &out), Ok(ID.to_string()));
    let codex = format!("WARNING: x\n{{\"type\":\"thread.started\",\"thread_id\":\"{OTHER}\"}}\n");
    assert_eq!(session_in(KnownCli::Codex, &codex), Ok(OTHER.to_string()));
    // Another client's event, a later announcement, an id that is a path or too long: none.
    assert!(session_in(KnownCli::Codex, &init).is_err());
    let later = format!("{{\"type\":\"assistant\"}}\n{init}\n");
    assert!(session_in(KnownCli::Claude, &later).is_err());
    for bad in [
        "../1.2.session/x",
        "/etc/passwd",
        "79a00084-21ad-42b0-9708-8d1bfea83607/../../x",
        "79a00084_21ad_42b0_9708_8d1bfea83607",
        "",
        &"a".repeat(5000),
    ] {
        let line = serde_json::json!({"type":"system","subtype":"init","session_id": bad});
        assert!(
            session_in(KnownCli::Claude, &line.to_string()).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn the_transcript_is_a_regular_file_found_by_the_id_in_real_directories() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    fs::create_dir_all(d.join("projects/-w")).expect("mkdir");
    fs::write(d.join(format!("projects/-w/{ID}.jsonl")), "{}\n").expect("write");
    assert_eq!(
        transcript(KnownCli::Claude, d, ID),
        Ok(PathBuf::from(format!("projects/-w/{ID}.jsonl")))
    );
    assert!(transcript(KnownCli::Claude, d, OTHER).is_err());
    // A link in its place, or a linked directory on the way: not taken.
    let secret = d.join("secret");
    fs::write(&secret, "s").expect("write");
    fs::create_dir_all(d.join("projects/-v")).expect("mkdir");
    std::os::unix::fs::symlink(&secret, d.join(format!("projects/-v/{OTHER}.jsonl")))
        .expect("link");
    assert!(transcript(KnownCli::Claude, d, OTHER).is_err());
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(elsewhere.join("p")).expect("mkdir");
    let third = "11111111-2222-3333-4444-555555555555";
    fs::write(elsewhere.join(format!("p/{third}.jsonl")), "x").expect("write");
    std::os::unix::fs::symlink(elsewhere.join("p"), d.join("projects/-u")).expect("link");
    assert!(transcript(KnownCli::Claude, d, third).is_err());

    let day = d.join("sessions/2026/11/26");
    fs::create_dir_all(&day).expect("mkdir");
    fs::write(
        day.join(format!("rollout-2026-11-26T09-00-00-{OTHER}.jsonl")),
        "x",
    )
    .expect("write");
    assert_eq!(
        transcript(KnownCli::Codex, d, OTHER),
        Ok(PathBuf::from(format!(
            "sessions/2026/11/26/rollout-2026-11-26T09-00-00-{OTHER}.jsonl"
        )))
    );
}

#[test]
fn a_kept_session_is_resumed_only_after_an_answer_and_by_the_same_client() {
    let tmp = tempfile::tempdir().expect("tmp");
    let private = tmp.path().join("private");
    fs::create_dir_all(private.join("projects/-w")).expect("mkdir");
    fs::write(private.join(format!("projects/-w/{ID}.jsonl")), "{}\n").expect("write");
    let log = tmp.path().join("1.1.log");
    fs::write(
        &log,
        format!(
            "=== orch: attempt 1 started at 2026-11-26T09:00:00Z: claude -p x ===\n{}\n",
            claude_init(ID)
        ),
    )
    .expect("log");
    let dir = kept_dir(&tmp.path().join("state"), "p", "1.1");
    keep(
        &Keep {
            cli: KnownCli::Claude,
            dir: dir.clone(),
            answers: 0,
            private: Some(private.clone()),
        },
        &log,
    );
    assert!(
        !private.join(format!("projects/-w/{ID}.jsonl")).exists(),
        "moved out"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(&dir).expect("kept").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "private");
    let claude: Vec<String> = CLAUDE_PRESET.iter().map(|s| s.to_string()).collect();
    let codex: Vec<String> = CODEX_PRESET.iter().map(|s| s.to_string()).collect();
    let mut entry = TaskEntry::default();
    // No answer yet: nothing to do.
    assert!(next(&dir, &claude, true, Some(&entry)).is_none());
    entry.orch_answers.push(crate::status::OrchAnswer {
        question: "q".into(),
        answer: "a".into(),
        at: String::new(),
    });
    match next(&dir, &claude, true, Some(&entry)) {
        Some(Next::Resume { session, rel, .. }) => {
            assert_eq!(session, ID);
            assert_eq!(rel, PathBuf::from(format!("projects/-w/{ID}.jsonl")));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        next(&dir, &codex, true, Some(&entry)),
        Some(Next::Fresh(_))
    ));
    assert!(matches!(
        next(&dir, &claude, false, Some(&entry)),
        Some(Next::Fresh(_))
    ));
    let mine = vec![
        "claude".to_string(),
        "-p".to_string(),
        "{{ prompt }}".to_string(),
    ];
    assert!(matches!(
        next(&dir, &mine, true, Some(&entry)),
        Some(Next::Fresh(_))
    ));

    // Unconfined: the record says why nothing was kept.
    keep(
        &Keep {
            cli: KnownCli::Claude,
            dir: dir.clone(),
            answers: 0,
            private: None,
        },
        &log,
    );
    match next(&dir, &claude, true, Some(&entry)) {
        Some(Next::Fresh(why)) => assert!(why.contains("unconfined"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_resumed_argv_holds_the_id_and_the_answer() {
    let a = argv(KnownCli::Claude, ID, "the answer", false);
    assert_eq!(&a[..3], ["claude", "--resume", ID]);
    assert!(a.contains(&"the answer".to_string()));
    // Streaming: the answer comes on stdin, never in the argv.
    let s = argv(KnownCli::Claude, ID, "the answer", true);
    assert_eq!(
        &s[..6],
        [
            "claude",
            "--resume",
            ID,
            "-p",
            "--input-format",
            "stream-json"
        ]
    );
    assert!(!s.contains(&"the answer".to_string()), "{s:?}");
    let c = argv(KnownCli::Codex, ID, "-x", true);
    assert_eq!(&c[..3], ["codex", "exec", "resume"]);
    assert_eq!(&c[c.len() - 3..], ["--", ID, "-x"]);
}

#[test]
fn claude_finds_the_transcript_in_the_project_of_the_new_worktree_too() {
    assert_eq!(
        claude_project(Path::new("/tmp/.tmpLzO95l/.orch/worktrees/p")).as_deref(),
        Some("-tmp--tmpLzO95l--orch-worktrees-p")
    );
    let tmp = tempfile::tempdir().expect("tmp");
    let kept = tmp.path().join("kept");
    let rel = PathBuf::from(format!("projects/-w-slot-1/{ID}.jsonl"));
    fs::create_dir_all(kept.join("projects/-w-slot-1")).expect("mkdir");
    fs::write(kept.join(&rel), "{\"x\":1}\n").expect("write");
    let private = tmp.path().join("private");
    fs::create_dir_all(&private).expect("mkdir");
    let launch = Launch {
        dir: kept.clone(),
        next: Some(Next::Resume {
            cli: KnownCli::Claude,
            session: ID.to_string(),
            from: kept.join(&rel),
            rel: rel.clone(),
        }),
    };
    launch
        .install(&private, Path::new("/w/slot-2"))
        .expect("install");
    for at in [rel, PathBuf::from(format!("projects/-w-slot-2/{ID}.jsonl"))] {
        assert_eq!(
            fs::read_to_string(private.join(&at)).expect("there"),
            "{\"x\":1}\n",
            "{}",
            at.display()
        );
    }
    launch.done();
    assert!(!kept.exists());
}
