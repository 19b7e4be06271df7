//! `[[service]]` tables and `services = [...]`: resolution plan over `[defaults]`, what a
//! service's recipe reads as, and bad input at its location.

use super::*;

const DB: &str = r#"[[service]]
name = "db"
image = "localhost/pg:16"
env = { PGPORT = "${ORCH_SERVICE_PORT}", A = "b" }
ready = ["pg_isready"]
ready_timeout = "5s"

[[service]]
name = "cache"
command = ["redis-server", "--port", "${ORCH_SERVICE_PORT}"]
port = 6379
"#;

#[test]
fn services_resolve_plan_over_defaults() {
    let repo = Repo::new();
    let m = repo
        .load(&format!(
            "{DB}\n[defaults]\nexecutor = \"container\"\nimage = \"localhost/dev\"\nservices = [\"db\"]\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/b.md\"\nservices = [\"cache\", \"db\"]\n\n\
             [[plan]]\nname = \"c\"\nfile = \"docs/c.md\"\nservices = []\nexecutor = \"local\"\n"
        ))
        .expect("valid");
    let names = |p: &str| m.plan(p).expect("plan").services.clone();
    assert_eq!(names("a"), ["db"], "the defaults'");
    assert_eq!(names("b"), ["cache", "db"], "the plan's, in its order");
    assert!(names("c").is_empty(), "none: a local plan may opt out");
    let db = &m.services[0];
    assert_eq!(db.run, ServiceRun::Image("localhost/pg:16".into()));
    assert_eq!(
        (db.port, db.ready.clone(), db.ready_timeout, db.line),
        (
            None,
            Some(vec!["pg_isready".to_string()]),
            Duration::from_secs(5),
            1
        )
    );
    assert_eq!(
        db.env,
        [
            ("A".to_string(), "b".to_string()),
            ("PGPORT".to_string(), "${ORCH_SERVICE_PORT}".to_string())
        ]
    );
    let cache = &m.services[1];
    assert_eq!(
        (cache.port, cache.ready_timeout),
        (Some(6379), Duration::from_secs(60))
    );
    assert_eq!(m.services_of(m.plan("b").expect("b"))[0].name, "cache");
}

#[test]
fn bad_service_input_is_refused_at_its_location() {
    let repo = Repo::new();
    let top = "[defaults]\nexecutor = \"container\"\nimage = \"localhost/dev\"\n\n";
    let plan = "[[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\n";
    let svc = |name: &str, extra: &str| {
        format!("[[service]]\nname = \"{name}\"\nimage = \"localhost/x\"\n{extra}\n")
    };
    let cases: &[(String, usize, usize, &str)] = &[
        // `a-b` and `a_b` would share their variables.
        (
            format!("{top}{}{}", svc("a-b", ""), svc("a_b", "")),
            10,
            8,
            "service `a_b` is defined twice",
        ),
        // Where orch's proxy listens in the plan's network.
        (
            format!(
                "{top}{}{plan}services = [\"db\"]\n",
                svc("db", "port = 3128")
            ),
            12,
            12,
            "orch's proxy listens there",
        ),
        // Two of a plan's services on one port.
        (
            format!(
                "{top}{}{}{plan}services = [\"db\", \"db2\"]\n",
                svc("db", "port = 5432"),
                svc("db2", "port = 5432")
            ),
            16,
            12,
            "service `db2` on port 5432: service `db` listens on it too",
        ),
        // An allowed loopback endpoint of the plan's agent.
        (
            format!(
                "{top}[agents.x]\ncommand = [\"x\"]\nnetwork_allow = [\"127.0.0.1:5432\"]\n\n{}{plan}agent = \"x\"\nservices = [\"db\"]\n",
                svc("db", "port = 5432")
            ),
            17,
            12,
            "may reach an allowed endpoint on it",
        ),
        (
            format!("{top}{}{plan}services = [\"db\", \"db\"]\n", svc("db", "")),
            12,
            19,
            "names service `db` twice",
        ),
        (
            format!("{top}{}", svc("db", "env = { \"A B\" = \"x\" }")),
            8,
            17,
            "names the variable `A B`",
        ),
        (
            format!("{top}{}", svc("db", "ready = []")),
            8,
            9,
            "`service.db.ready` must not be empty",
        ),
        (
            format!("{top}{}", svc("db", "ready_timeout = \"0s\"")),
            8,
            17,
            "`service.db.ready_timeout` must be greater than zero",
        ),
        (
            format!("{top}{}", "[[service]]\nimage = \"localhost/x\"\n"),
            5,
            1,
            "a `[[service]]` table needs `name`",
        ),
    ];
    for (manifest, line, col, fragment) in cases {
        repo.one_error(manifest, *line, *col, fragment);
    }
}
