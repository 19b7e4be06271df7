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
fn allowed_endpoints_apart_from_given_ports_load() {
    let repo = Repo::new();
    let svc = "[[service]]\nname = \"db\"\nimage = \"localhost/x\"\n";
    for (allow, network, port) in [
        // Below the blocks: a dev server's port.
        ("127.0.0.1:41999", "confined", ""),
        // A name's port, not the loopback's.
        ("example.com:42001", "confined", ""),
        // No network: no endpoint is opened.
        ("127.0.0.1:42001", "none", ""),
        // Every service has a fixed port (1024 to 41999).
        ("127.0.0.1:42001", "confined", "port = 5432\n"),
    ] {
        let m = repo.load(&format!(
            "{svc}{port}\n[defaults]\nexecutor = \"container\"\nimage = \"localhost/dev\"\n\n\
             [agents.x]\ncommand = [\"x\"]\nnetwork = \"{network}\"\nnetwork_allow = [\"{allow}\"]\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/a.md\"\nagent = \"x\"\nservices = [\"db\"]\n"
        ));
        assert!(m.is_ok(), "{allow} {network} {port}: {m:?}");
    }
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
        // An allowed loopback endpoint where a service without `port` may be given its port
        // (the plan's block, from 42000 on): the agent's own list, then `[defaults]`', any
        // loopback spelling.
        (
            format!(
                "{top}[agents.x]\ncommand = [\"x\"]\nnetwork_allow = [\"example.com:443\", \"127.0.0.1:42001\"]\n\n{}{plan}agent = \"x\"\nservices = [\"db\"]\n",
                svc("db", "")
            ),
            7,
            37,
            "plan `a`'s service `db` is given a port of the plan's block (42000…65535, known only when it runs), and port 42001 there is an allowed endpoint of its agent `x`",
        ),
        (
            format!(
                "[defaults]\nexecutor = \"container\"\nimage = \"localhost/dev\"\nnetwork_allow = [\"localhost:65535\"]\n\n[agents.x]\ncommand = [\"x\"]\n\n{}{}{plan}agent = \"x\"\nservices = [\"web\", \"db\"]\n",
                svc("web", "port = 8080"),
                svc("db", "")
            ),
            4,
            18,
            "service `db` is given a port of the plan's block (42000…65535, known only when it runs), and port 65535 there",
        ),
        (
            format!(
                "{top}[agents.x]\ncommand = [\"x\"]\nnetwork_allow = [\"[::1]:50000\"]\n\n{}{plan}agent = \"x\"\nservices = [\"db\"]\n",
                svc("db", "")
            ),
            7,
            18,
            "port 50000 there is an allowed endpoint",
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
