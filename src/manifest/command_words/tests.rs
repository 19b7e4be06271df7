use super::*;

fn words(argv: &[&str], files: &[&str]) -> Vec<String> {
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_string()).collect();
    let is_file = |w: &str| files.contains(&w);
    program_words(&argv, &is_file)
}

const FILES: [&str; 12] = [
    "hooks/n15.sh",
    "ci/check.sh",
    "lock",
    "list.txt",
    "hooks/pre.js",
    "./hooks/pre.js",
    "./x.mjs",
    "x.js",
    "rc.sh",
    "prog.awk",
    "s.sed",
    "Makefile.ci",
];

/// A wrapper orch does not know (or a known one with an option it does not know): every
/// file word is code, the script after it included.
#[test]
fn after_a_wrapper_orch_does_not_know_every_file_is_code() {
    let cases: [&[&str]; 13] = [
        &["flock", "lock", "sh", "hooks/n15.sh"],
        &["chrt", "-i", "0", "sh", "hooks/n15.sh"],
        &["taskset", "1", "sh", "hooks/n15.sh"],
        &["strace", "-f", "sh", "hooks/n15.sh"],
        &["xargs", "-a", "list.txt", "sh", "hooks/n15.sh"],
        &["uv", "run", "sh", "hooks/n15.sh"],
        &["sudo", "-u", "root", "sh", "hooks/n15.sh"],
        &["busybox", "sh", "hooks/n15.sh"],
        &["ionice", "-c3", "sh", "hooks/n15.sh"],
        &["./hooks/run", "hooks/n15.sh"],
        // A known wrapper, an option it has not.
        &["timeout", "--weird", "5", "sh", "hooks/n15.sh"],
        &["nice", "--bogus", "sh", "hooks/n15.sh"],
        &["env", "-Z", "pytest", "hooks/n15.sh"],
    ];
    for argv in cases {
        let w = words(argv, &FILES);
        assert!(w.contains(&"hooks/n15.sh".to_string()), "{argv:?}: {w:?}");
    }
    assert!(words(&["flock", "lock", "sh", "hooks/n15.sh"], &FILES).contains(&"lock".into()));
    assert!(
        words(&["xargs", "-a", "list.txt", "sh"], &FILES).contains(&"list.txt".into()),
        "a file an unknown program is handed may be code"
    );
    assert!(words(&["./run", "--config=rc.sh"], &FILES).contains(&"rc.sh".into()));
}

/// The wrappers orch knows, with their options and values: the program after them.
#[test]
fn known_wrappers_with_their_options() {
    let cases: [(&[&str], &[&str]); 8] = [
        (
            &["env", "-u", "X", "sh", "hooks/n15.sh"],
            &["sh", "hooks/n15.sh"],
        ),
        (&["env", "-S", "sh hooks/n15.sh"], &["sh", "hooks/n15.sh"]),
        (
            &["env", "-S", "FOO=1 sh   hooks/n15.sh", "x"],
            &["sh", "hooks/n15.sh"],
        ),
        (
            &["env", "--split-string=sh hooks/n15.sh"],
            &["sh", "hooks/n15.sh"],
        ),
        (
            &["env", "-i", "-C", "d", "A=1", "sh", "ci/check.sh"],
            &["sh", "ci/check.sh"],
        ),
        (
            &["timeout", "-k", "5", "60", "sh", "ci/check.sh"],
            &["sh", "ci/check.sh"],
        ),
        (
            &["nice", "-n", "5", "nohup", "sh", "ci/check.sh"],
            &["sh", "ci/check.sh"],
        ),
        (
            &["stdbuf", "-oL", "-e", "0", "sh", "ci/check.sh"],
            &["sh", "ci/check.sh"],
        ),
    ];
    for (argv, want) in cases {
        assert_eq!(words(argv, &FILES), want, "{argv:?}");
    }
    // `env -u pytest`: pytest is the variable's name, not the program.
    let w = words(&["env", "-u", "pytest", "sh", "hooks/n15.sh"], &FILES);
    assert_eq!(w, ["sh", "hooks/n15.sh"]);
}

/// What an option loads is code, as the script is.
#[test]
fn files_given_to_code_loading_options_are_code() {
    let cases: [(&[&str], &[&str]); 9] = [
        (
            &["node", "-r", "./hooks/pre.js", "x.js"],
            &["node", "./hooks/pre.js", "x.js"],
        ),
        (
            &["node", "--import", "./x.mjs", "x.js"],
            &["node", "./x.mjs", "x.js"],
        ),
        (
            &["node", "--require=hooks/pre.js", "x.js"],
            &["node", "hooks/pre.js", "x.js"],
        ),
        (
            &["bash", "--rcfile", "rc.sh", "ci/check.sh"],
            &["bash", "rc.sh", "ci/check.sh"],
        ),
        (&["awk", "-f", "prog.awk", "list.txt"], &["awk", "prog.awk"]),
        (&["sed", "-f", "s.sed", "list.txt"], &["sed", "s.sed"]),
        (
            &["make", "-f", "Makefile.ci", "test"],
            &["make", "Makefile.ci"],
        ),
        (
            &["pytest", "-p", "hooks/pre.js", "x.js"],
            &["pytest", "hooks/pre.js"],
        ),
        (
            &["mocha", "--require", "hooks/pre.js", "x.js"],
            &["mocha", "hooks/pre.js"],
        ),
    ];
    for (argv, want) in cases {
        assert_eq!(words(argv, &FILES), want, "{argv:?}");
    }
}

/// Inline code: the files it names are code; package runners run `package.json`.
#[test]
fn inline_code_and_package_scripts() {
    assert_eq!(
        words(&["sh", "-c", "sh 'hooks/n15.sh'; x.js", "list.txt"], &FILES),
        ["sh", "hooks/n15.sh", "x.js"]
    );
    assert_eq!(
        words(&["python3", "-m", "pytest", "list.txt"], &FILES),
        ["python3"]
    );
    for runner in [&["npm", "run", "x"][..], &["npm", "test"], &["npx", "jest"]] {
        assert!(
            words(runner, &FILES).contains(&PACKAGE_JSON.to_string()),
            "{runner:?}"
        );
    }
    assert!(words(&["bun", "run", "x"], &FILES).contains(&PACKAGE_JSON.to_string()));
    // Known data tools: the files they are handed are data.
    assert_eq!(words(&["pytest", "list.txt"], &FILES), ["pytest"]);
    assert_eq!(words(&["cargo", "test"], &FILES), ["cargo"]);
}

/// Programs that only read what they are handed: every argument is data, their options'
/// values included (`test -f`, `grep -f`, `diff -r` load no code); after a wrapper orch
/// does not know, or with a wrapper's value naming a file, fail closed all the same.
#[test]
fn a_reader_is_handed_data_and_the_wrappers_words_are_code() {
    let cases: [&[&str]; 8] = [
        &["cat", "list.txt"],
        &["test", "-f", "list.txt"],
        &["[", "-f", "list.txt", "]"],
        &["grep", "-f", "list.txt", "x.js"],
        &["diff", "-r", "list.txt", "x.js"],
        &["/usr/bin/cmp", "list.txt", "x.js"],
        &["timeout", "5", "cat", "list.txt"],
        &["env", "-S", "cat list.txt"],
    ];
    for argv in cases {
        let w = words(argv, &FILES);
        assert!(
            !w.iter().any(|w| w == "list.txt" || w == "x.js"),
            "{argv:?}: {w:?}"
        );
    }
    for argv in [
        &["flock", "lock", "cat", "list.txt"][..],
        &["timeout", "--weird", "5", "cat", "list.txt"],
        &["env", "BASH_ENV=list.txt", "bash", "ci/check.sh"],
        &["./lock", "cat", "list.txt"],
    ] {
        let w = words(argv, &FILES);
        assert!(w.contains(&"list.txt".into()), "{argv:?}: {w:?}");
    }
    // A file of the repository named as a wrapper is code, run as one.
    let files = ["./env", "hooks/n15.sh"];
    assert_eq!(
        words(&["./env", "sh", "hooks/n15.sh"], &files),
        ["./env", "sh", "hooks/n15.sh"]
    );
}

/// Which words are code only because orch does not know the grammar: the files an unknown
/// program or wrapper option is handed, never the program, a script or `package.json`.
#[test]
fn the_words_taken_as_code_for_want_of_a_grammar() {
    let unknown = |argv: &[&str], files: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_string()).collect();
        unknown_grammar_words(&argv, &|w: &str| files.contains(&w))
    };
    let files = ["ci/run-tests", "tests/cases.txt", "ci/check.sh", "./env"];
    assert_eq!(
        unknown(&["ci/run-tests", "tests/cases.txt"], &files),
        ["tests/cases.txt"]
    );
    assert_eq!(
        unknown(&["npm", "test", "tests/cases.txt"], &files),
        ["tests/cases.txt"]
    );
    assert_eq!(
        unknown(&["env", "X=tests/cases.txt", "sh", "ci/check.sh"], &files),
        ["tests/cases.txt"]
    );
    assert_eq!(
        unknown(
            &["nice", "--bogus", "ci/run-tests", "tests/cases.txt"],
            &files
        ),
        ["ci/run-tests", "tests/cases.txt"]
    );
    for argv in [
        &["sh", "ci/check.sh", "tests/cases.txt"][..],
        &["ci/run-tests"],
        &["./env", "sh", "ci/check.sh"],
        &["cat", "tests/cases.txt"],
    ] {
        assert!(unknown(argv, &files).is_empty(), "{argv:?}");
    }
}

/// A word names the path git sees, or none when it leaves the repository.
#[test]
fn a_word_names_the_path_git_sees() {
    let root = Path::new("/r/repo");
    let cases: [(&str, Option<&str>); 12] = [
        ("hooks/n13.sh", Some("hooks/n13.sh")),
        ("hooks//n13.sh", Some("hooks/n13.sh")),
        ("./hooks/n13.sh", Some("hooks/n13.sh")),
        ("h/./s21", Some("h/s21")),
        ("docs/../hooks/n20.sh", Some("hooks/n20.sh")),
        ("a/b/../../hooks/x", Some("hooks/x")),
        ("/r/repo/hooks//x.sh", Some("hooks/x.sh")),
        ("/r/repo/../repo/hooks/x.sh", Some("hooks/x.sh")),
        ("../repo/hooks/x.sh", None),
        ("docs/../../x", None),
        ("/etc/passwd", None),
        ("-f", None),
    ];
    for (w, want) in cases {
        assert_eq!(repo_path_of(w, &[root]).as_deref(), want, "{w}");
    }
    assert_eq!(repo_path_of(".", &[root]), None);
}
