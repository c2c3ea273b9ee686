//! The runner splits MySQL/MariaDB files as the `mysql` client does: each file of a corpus is
//! loaded once with the machine's `mariadb` client and once by the runner, into two fresh
//! databases, and the two are dumped and compared (schema, routines, triggers, rows).

mod common;

use common::*;
use serde_json::json;
use std::process::{Command, Stdio};

fn client(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("`{program}` (MariaDB's client, installed with the server): {e}")
        });
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Everything but the history table and the runner's neighbours of it, in a form two
/// databases can be compared by.
fn dump(database: &str) -> String {
    let ignored: Vec<String> = [
        "_sqlx_migrations",
        "_sqlx_migrations_fingerprints",
        "_sqlx_migrations_repairs",
    ]
    .iter()
    .map(|table| format!("--ignore-table={database}.{table}"))
    .collect();
    let mut args = vec![
        "--skip-comments",
        "--skip-dump-date",
        "--routines",
        "--triggers",
        "--events",
        "--skip-extended-insert",
    ];
    args.extend(ignored.iter().map(String::as_str));
    args.push(database);
    client("mariadb-dump", &args, None)
}

async fn loads_like_the_mysql_client(name: &str, sql: &str) {
    let by_client = TestDb::fresh(Engine::MariaDb).await;
    // The runner talks utf8mb4 (this client's default is older) and keeps comments inside
    // stored programs, as `mysql --comments` does.
    client(
        "mariadb",
        &[
            "--default-character-set=utf8mb4",
            "--comments",
            &by_client.name,
        ],
        Some(sql),
    );
    let by_runner = TestDb::fresh(Engine::MariaDb).await;
    let runner = Runner::default().await;
    let lint_off = json!({"lint": {"off": ["destructive", "backward-incompatible", "other"]}});
    let run = runner
        .run(&by_runner, &[("1_corpus.sql", sql)], lint_off)
        .await;
    assert_eq!(
        variables(&run)["AppliedCount"],
        "1",
        "{name}: {}",
        summary(&run)
    );
    let (expected, actual) = (dump(&by_client.name), dump(&by_runner.name));
    assert!(
        expected.contains("CREATE"),
        "{name}: the client loaded nothing:\n{expected}"
    );
    let differing: Vec<String> = expected
        .lines()
        .zip(actual.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("client: {a}\nrunner: {b}"))
        .collect();
    assert!(
        differing.is_empty() && expected.lines().count() == actual.lines().count(),
        "{name}: the runner's database differs from the client's:\n{}",
        differing.join("\n")
    );
}

const TRICKY_TEXT: &str = r#"-- comments of every kind
# a hash comment; with a semicolon
/* a block comment; with a semicolon */
CREATE TABLE notes (
  id INT PRIMARY KEY,       -- trailing comment; here
  body VARCHAR(200) NOT NULL, # and here;
  `odd;name` INT DEFAULT 1
);
INSERT INTO notes (id, body) VALUES (1, 'semi;colon'), (2, 'it''s'), (3, 'back\'slash\\'),
  (4, "double;quoted"), (5, '-- not a comment'), (6, '/* not a comment */'), (7, '# nor this');
INSERT INTO notes (id, body) VALUES (8, CONCAT('x', 1--1));
/*!40101 INSERT INTO notes (id, body) VALUES (9, 'executable comment') */;
/*M!100100 INSERT INTO notes (id, body) VALUES (10, 'mariadb executable comment') */;
/*!99999 INSERT INTO notes (id, body) VALUES (11, 'too new, skipped by the server') */;
INSERT /*+ NO_RANGE_OPTIMIZATION(notes) */ INTO notes (id, body) VALUES (12, 'hint');
INSERT INTO notes (id, body)
  VALUES (13, 'multi
line; string');
"#;

const DELIMITERS: &str = r#"CREATE TABLE counter (n INT NOT NULL);
INSERT INTO counter VALUES (0);
DELIMITER $$
CREATE PROCEDURE bump(IN by_n INT)
BEGIN
  -- a comment; inside
  UPDATE counter SET n = n + by_n;
  SELECT 'done;' AS result;
END$$
DELIMITER //
CREATE OR REPLACE PROCEDURE bump_twice()
BEGIN
  CALL bump(1);
  CALL bump(1);
END //
CREATE TRIGGER counter_guard BEFORE UPDATE ON counter FOR EACH ROW
BEGIN
  IF NEW.n < 0 THEN SET NEW.n = 0; END IF;
END //
DELIMITER ;
CALL bump_twice();
CALL bump(5);
"#;

#[tokio::test]
async fn comments_quotes_and_executable_comments_load_as_with_the_client() {
    loads_like_the_mysql_client("tricky text", TRICKY_TEXT).await;
}

#[tokio::test]
async fn delimiter_blocks_load_as_with_the_client() {
    loads_like_the_mysql_client("delimiters", DELIMITERS).await;
}

#[tokio::test]
async fn real_mysqldump_output_loads_as_with_the_client() {
    // A real dump: tables with awkward data, a view, a procedure, a function and a trigger,
    // dumped by the machine's mariadb-dump with its executable comments and DELIMITERs.
    let source = TestDb::fresh(Engine::MariaDb).await;
    client("mariadb", &[&source.name], Some(TRICKY_TEXT));
    client("mariadb", &[&source.name], Some(DELIMITERS));
    client(
        "mariadb",
        &[&source.name],
        Some(
            "CREATE VIEW long_notes AS SELECT id, body FROM notes WHERE LENGTH(body) > 8;\n\
             DELIMITER //\n\
             CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC BEGIN RETURN x * 2; END //\n\
             DELIMITER ;\n",
        ),
    );
    let dumped = client(
        "mariadb-dump",
        &["--routines", "--triggers", "--events", &source.name],
        None,
    );
    assert!(
        dumped.contains("/*!40101"),
        "a real dump has executable comments"
    );
    assert!(dumped.contains("DELIMITER ;;"), "and DELIMITER blocks");
    loads_like_the_mysql_client("mariadb-dump output", &dumped).await;
}
