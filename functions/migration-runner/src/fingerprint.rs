//! What a migration does, apart from how it is written: the SHA-384 of its tokens with every
//! comment and every run of whitespace left out, read by the same readers that split and lint
//! it (squawk's lexer for PostgreSQL; the `mysql` client's rules in `statements` for MySQL,
//! MariaDB and SQLite). Recorded beside the history at apply time
//! (`_sqlx_migrations_fingerprints`), it lets `repair` prove that an edited file changed only in
//! comments or whitespace.

use crate::engine::Engine;
use crate::statements::{self, Dialect, Token};
use sha2::{Digest, Sha384};

/// The fingerprint of `sql` as `engine` reads it; `None` when it cannot be read to its end
/// (an unterminated quote or comment), which no repair then takes as proof.
pub fn of(sql: &str, engine: Engine) -> Option<Vec<u8>> {
    let tokens: Vec<String> = match engine {
        Engine::Postgres => postgres_tokens(sql)?,
        Engine::MySql => portable_tokens(sql, Dialect::MySql)?,
        Engine::Sqlite => portable_tokens(sql, Dialect::Sqlite)?,
    };
    let mut hash = Sha384::new();
    for token in tokens {
        hash.update(token.as_bytes());
        // A separator no token holds, so `a b` and `ab` differ.
        hash.update([0x1f]);
    }
    Some(hash.finalize().to_vec())
}

/// squawk's tokens, trivia left out.
fn postgres_tokens(sql: &str) -> Option<Vec<String>> {
    let parse = squawk_syntax::SourceFile::parse(sql);
    if !parse.errors().is_empty() {
        return None;
    }
    let tree = parse.tree();
    use squawk_syntax::ast::AstNode;
    Some(
        tree.syntax()
            .descendants_with_tokens()
            .filter_map(|element| element.into_token())
            .filter(|token| !token.kind().is_trivia())
            .map(|token| token.text().to_string())
            .collect(),
    )
}

/// The statements' tokens as the `mysql` client reads them, comments left out.
fn portable_tokens(sql: &str, dialect: Dialect) -> Option<Vec<String>> {
    let list = match statements::split(sql, dialect).ok()? {
        statements::Split::Statements(list) => list.into_iter().map(|s| s.sql).collect(),
        statements::Split::Whole => vec![sql.to_string()],
    };
    let mut tokens = Vec::new();
    for statement in list {
        for token in statements::tokens(&statement, dialect).ok()? {
            tokens.push(match token {
                Token::Word(word) => format!("w{word}"),
                Token::Quoted(name) => format!("q{name}"),
                Token::Text(text) => format!("t{text}"),
                Token::Symbol(symbol) => format!("s{symbol}"),
            });
        }
        tokens.push(";".into());
    }
    Some(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn comments_and_whitespace_do_not_change_it_and_code_does() {
        for engine in [Engine::Postgres, Engine::MySql, Engine::Sqlite] {
            let base = of(
                "CREATE TABLE t (id INT);\nINSERT INTO t VALUES (1);\n",
                engine,
            )
            .unwrap();
            let comments = of(
                "-- The table.\nCREATE   TABLE t (\n  id INT /* key */\n);\n\nINSERT INTO t VALUES (1); -- one row\n",
                engine,
            )
            .unwrap();
            assert_eq!(base, comments, "{engine}");
            let code = of(
                "CREATE TABLE t (id BIGINT);\nINSERT INTO t VALUES (1);\n",
                engine,
            )
            .unwrap();
            assert_ne!(base, code, "{engine}");
            let literal = of(
                "CREATE TABLE t (id INT);\nINSERT INTO t VALUES ('1 ');\n",
                engine,
            )
            .unwrap();
            let literal_space = of(
                "CREATE TABLE t (id INT);\nINSERT INTO t VALUES ('1  ');\n",
                engine,
            )
            .unwrap();
            assert_ne!(
                literal, literal_space,
                "whitespace inside a string is data: {engine}"
            );
        }
    }

    #[test]
    fn text_it_cannot_read_has_none() {
        assert_eq!(of("SELECT 'unterminated;", Engine::MySql), None);
    }

    proptest! {
        #[test]
        fn never_panics(sql in "\\PC{0,80}") {
            for engine in [Engine::Postgres, Engine::MySql, Engine::Sqlite] {
                let _ = of(&sql, engine);
            }
        }

        #[test]
        fn added_comments_and_blank_lines_never_change_it(
            words in proptest::collection::vec("[a-z]{1,8}", 1..8),
            comment in "[a-zA-Z0-9 ]{0,30}",
        ) {
            let statement = format!("SELECT {};", words.join(", "));
            let spaced = format!("SELECT {} ;", words.join(" , "));
            let commented = format!("-- {comment}\n\n{spaced}\n  /* {comment} */\n");
            for engine in [Engine::Postgres, Engine::MySql] {
                prop_assert_eq!(of(&statement, engine), of(&commented, engine));
            }
        }
    }
}
