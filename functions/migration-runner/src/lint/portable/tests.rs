//! What the MySQL/SQLite lint finds and refuses, shape by shape.

use super::*;
use crate::source::MigrationSetBuilder;

/// What the lint finds in `sql`, as the one migration of a set.
fn findings(sql: &str, flavor: Flavor) -> Vec<RawFinding> {
    let mut builder = MigrationSetBuilder::default();
    builder.add("1_m.sql", sql.as_bytes().to_vec()).unwrap();
    let set = builder.finish().unwrap();
    lint(&set.migrations[&1], flavor).unwrap()
}

pub(super) fn rules(sql: &str, flavor: Flavor) -> Vec<(usize, String)> {
    findings(sql, flavor)
        .into_iter()
        .map(|f| (f.line, f.rule))
        .collect()
}

#[test]
fn finds_the_destructive_and_incompatible_class_on_mysql() {
    let sql = "CREATE TABLE a (id INT);\nALTER TABLE a DROP COLUMN b;\nALTER TABLE a RENAME COLUMN c TO d;\nALTER TABLE a MODIFY e BIGINT;\nALTER TABLE a CHANGE f g INT;\nRENAME TABLE a TO b;\nALTER TABLE b ADD COLUMN h INT NOT NULL;\nALTER TABLE b ADD COLUMN i INT NOT NULL DEFAULT 0;\nALTER TABLE b ADD COLUMN j INT NOT NULL AUTO_INCREMENT;\nDROP TABLE b;\n";
    assert_eq!(
        rules(sql, Flavor::MySql),
        vec![
            (2, "ban-drop-column".into()),
            (3, "renaming-column".into()),
            (4, "changing-column-type".into()),
            (5, "renaming-column".into()),
            (6, "renaming-table".into()),
            (7, "adding-required-field".into()),
            (10, "ban-drop-table".into()),
        ]
    );
}

#[test]
fn finds_drops_and_renames_on_sqlite() {
    let sql = "ALTER TABLE a DROP COLUMN b;\n-- a comment\nALTER TABLE a RENAME TO c;\nCREATE TABLE d (x TEXT NOT NULL);";
    assert_eq!(
        rules(sql, Flavor::Sqlite),
        vec![(1, "ban-drop-column".into()), (3, "renaming-table".into())]
    );
}

#[test]
fn a_statement_of_the_class_that_cannot_be_read_is_reported_not_skipped() {
    for sql in [
        "ALTER TABLE;",
        "DROP TABLE IF EXISTS;",
        "RENAME TABLE a;",
        "ALTER TABLE t DROP COLUMN;",
        "ALTER TABLE t RENAME COLUMN a;",
        "ALTER TABLE t ADD (a INT NOT NULL;",
        "SELECT 'never closed;",
        "DROP TABLE a /* never closed;",
    ] {
        assert_eq!(
            rules(sql, Flavor::MySql),
            vec![(1, UNPARSED.into())],
            "{sql}"
        );
    }
    assert_eq!(
        rules("ALTER TABLE;\nDROP TABLE x;", Flavor::Sqlite),
        vec![(1, UNPARSED.into()), (2, "ban-drop-table".into())]
    );
}

#[test]
fn reads_mysql_a_general_parser_refused() {
    // Table options beside the operations, every DROP that is not a column, MariaDB's
    // IF EXISTS, executable comments (the server runs their code).
    let sql = "ALTER TABLE t ADD COLUMN x INT NOT NULL, ALGORITHM=INPLACE, LOCK=NONE;\n\
               ALTER TABLE t DROP INDEX i, DROP PRIMARY KEY, DROP FOREIGN KEY fk, DROP CONSTRAINT c, DROP CHECK k, DROP y;\n\
               ALTER TABLE t DROP COLUMN IF EXISTS z;\n\
               /*!40101 DROP TABLE old */;\n\
               ALTER ONLINE TABLE t MODIFY COLUMN IF EXISTS w BIGINT;";
    assert_eq!(
        rules(sql, Flavor::MySql),
        vec![
            (1, "adding-required-field".into()),
            (2, "ban-drop-column".into()),
            (3, "ban-drop-column".into()),
            (4, "ban-drop-table".into()),
            (5, "changing-column-type".into()),
        ]
    );
}

#[test]
fn words_inside_parentheses_strings_and_comments_are_not_the_statement() {
    let sql = "ALTER TABLE t ADD COLUMN a INT CHECK (a IS NOT NULL);\n\
               ALTER TABLE t ADD COLUMN b DECIMAL(10, 2) NOT NULL DEFAULT 0;\n\
               INSERT INTO t (note) VALUES ('DROP TABLE t');\n\
               -- DROP TABLE t;\n\
               # ALTER TABLE t DROP COLUMN a;\n\
               ALTER TABLE t ADD (c INT NOT NULL, d INT, INDEX (c), e INT NOT NULL GENERATED ALWAYS AS (c + 1));\n\
               ALTER TABLE t ADD INDEX (a), ADD UNIQUE KEY u (b), ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id);\n\
               DROP TEMPORARY TABLE scratch;";
    assert_eq!(
        rules(sql, Flavor::MySql),
        vec![(6, "adding-required-field".into())]
    );
}

#[test]
fn quoted_keywords_are_names() {
    let got = lint_messages(
        "ALTER TABLE `order` DROP `index`;\nDROP TABLE `drop`, `db`.`t``x`;",
        Flavor::MySql,
    );
    assert_eq!(
        got,
        vec![
            "dropping column `order`.`index` loses its data and breaks the release still using it.".to_string(),
            "dropping table `drop`, `db`.`t``x` loses its data and breaks the release still using it.".to_string(),
        ]
    );
}

#[test]
fn reads_sqlite_renames_with_and_without_column() {
    let sql = "ALTER TABLE a RENAME b TO c;\nALTER TABLE \"a\" RENAME TO [d];\nALTER TABLE a RENAME COLUMN x TO y;";
    assert_eq!(
        lint_messages(sql, Flavor::Sqlite),
        vec![
            "renaming column `a`.`b` to `c` breaks the release still using the old name."
                .to_string(),
            "renaming table `a` to `d` breaks the release still using the old name.".to_string(),
            "renaming column `a`.`x` to `y` breaks the release still using the old name."
                .to_string(),
        ]
    );
}

#[test]
fn a_change_that_keeps_the_name_in_another_case_is_a_redefinition() {
    assert_eq!(
        rules("ALTER TABLE t CHANGE Total total BIGINT;", Flavor::MySql),
        vec![(1, "changing-column-type".into())]
    );
}

#[test]
fn a_stored_program_sent_whole_is_read_statement_by_statement() {
    let sql = "CREATE PROCEDURE p() BEGIN DROP TABLE a; IF x THEN ALTER TABLE b DROP c; ELSE RENAME TABLE d TO e; END IF; END";
    assert_eq!(
        rules(sql, Flavor::MySql),
        vec![
            (1, "ban-drop-table".into()),
            (1, "ban-drop-column".into()),
            (1, "renaming-table".into())
        ]
    );
    assert_eq!(
        rules("BEGIN NOT ATOMIC DROP VIEW v; END;", Flavor::MySql),
        vec![(1, "ban-drop-view".into())]
    );
}

#[test]
fn bodies_under_a_delimiter_and_event_bodies_are_read_too() {
    let sql = "DELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  DROP TABLE a;\nEND//\nDELIMITER ;\nCREATE EVENT e ON SCHEDULE EVERY 1 DAY DO ALTER TABLE b DROP COLUMN c;\nSELECT CASE WHEN x THEN 1 ELSE 2 END FROM t;";
    assert_eq!(
        rules(sql, Flavor::MySql),
        vec![(2, "ban-drop-table".into()), (7, "ban-drop-column".into())]
    );
}

fn lint_messages(sql: &str, flavor: Flavor) -> Vec<String> {
    findings(sql, flavor)
        .into_iter()
        .map(|f| f.message)
        .collect()
}
