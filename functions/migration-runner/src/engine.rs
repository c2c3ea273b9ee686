//! The database engines, and which this build carries: a leaf every other module may use.

use pipeline_ext::job::JobError;
use std::fmt;

/// Whether this build carries SQLite (the `sqlite` feature: local runs, not the Lambda package).
pub const SQLITE_BUILT_IN: bool = cfg!(feature = "sqlite");

/// A database engine the runner speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL (RDS, Aurora PostgreSQL).
    Postgres,
    /// MySQL and MariaDB (RDS, Aurora MySQL).
    MySql,
    /// A local file; for local runs.
    Sqlite,
}

impl Engine {
    /// The engine an RDS `engine` name (or ours) is.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "aurora-postgresql" => Some(Engine::Postgres),
            "mysql" | "mariadb" | "aurora" | "aurora-mysql" => Some(Engine::MySql),
            "sqlite" => Some(Engine::Sqlite),
            _ => None,
        }
    }

    /// Where the engine listens unless told otherwise.
    pub(crate) fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::MySql => 3306,
            Engine::Sqlite => 0,
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Postgres => "postgres",
            Engine::MySql => "mysql",
            Engine::Sqlite => "sqlite",
        })
    }
}

/// The refusal of a SQLite target by a build without the `sqlite` feature (the Lambda package).
pub fn sqlite_not_built_in() -> JobError {
    JobError::config(
        "engine `sqlite` is not in this build of migration-runner: the Lambda package carries PostgreSQL and MySQL/MariaDB (RDS, Aurora), and a SQLite file would not outlive the function's environment. SQLite is for local runs (`cargo build` has the `sqlite` feature); point the secret at an RDS or Aurora database",
    )
}

pub(crate) fn engine_built_in(engine: Engine, sqlite_built_in: bool) -> Result<(), JobError> {
    if engine == Engine::Sqlite && !sqlite_built_in {
        return Err(sqlite_not_built_in());
    }
    Ok(())
}
