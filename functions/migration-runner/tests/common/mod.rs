//! migration-runner through its binary: local S3, Secrets Manager and CodePipeline, and a
//! fresh database per test on the machine's PostgreSQL and MariaDB servers (or a SQLite file).
#![allow(dead_code)]

use pipeline_local::job_invocation::JobRun;
use pipeline_testkit::{JobEventBuilder, JobRunAssertions, LocalFunction};
use serde_json::{json, Value};
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{AssertSqlSafe, Connection};
use std::time::Duration;

pub const ARTIFACTS: &str = "codepipeline-artifacts";
pub const FOLDER: &str = "db/migrations";

pub const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const MARIADB_ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MariaDb,
    Sqlite,
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub engine: Engine,
    pub name: String,
    pub url: String,
    /// The secret the runner reads, RDS format.
    pub secret: Value,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn fresh(engine: Engine) -> Self {
        let name = format!("mr_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        match engine {
            Engine::Postgres => {
                let mut admin = PgConnection::connect(POSTGRES_ADMIN)
                    .await
                    .expect("PostgreSQL on 127.0.0.1:5432 (the README's test command starts it)");
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                Self {
                    engine,
                    url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                    secret: json!({"engine": "postgres", "host": "127.0.0.1", "port": 5432,
                        "username": "postgres", "password": "pg-Secret-Never-Logged-7731", "dbname": name}),
                    name,
                    _dir: None,
                }
            }
            Engine::MariaDb => {
                let mut admin = MySqlConnection::connect(MARIADB_ADMIN)
                    .await
                    .expect("MariaDB on 127.0.0.1:3306 (the README's test command starts it)");
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                Self {
                    engine,
                    url: format!("mysql://root@127.0.0.1:3306/{name}"),
                    secret: json!({"engine": "mariadb", "host": "127.0.0.1", "port": "3306",
                        "username": "root", "password": "", "dbname": name}),
                    name,
                    _dir: None,
                }
            }
            Engine::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(format!("{name}.db"));
                let path = path.to_str().unwrap().to_string();
                Self {
                    engine,
                    url: format!("sqlite://{path}?mode=rwc"),
                    secret: json!({"engine": "sqlite", "dbname": path}),
                    name,
                    _dir: Some(dir),
                }
            }
        }
    }

    /// An existing SQLite file (a snapshot's copy), opened read-only.
    pub fn at_sqlite_file(path: &std::path::Path) -> Self {
        let path = path.to_str().unwrap().to_string();
        Self {
            engine: Engine::Sqlite,
            url: format!("sqlite://{path}?mode=ro"),
            secret: json!({"engine": "sqlite", "dbname": path}),
            name: "snapshot".into(),
            _dir: None,
        }
    }

    pub async fn conn(&self) -> Conn {
        match self.engine {
            Engine::Postgres => Conn::Postgres(PgConnection::connect(&self.url).await.unwrap()),
            Engine::MariaDb => Conn::MySql(MySqlConnection::connect(&self.url).await.unwrap()),
            Engine::Sqlite => Conn::Sqlite(SqliteConnection::connect(&self.url).await.unwrap()),
        }
    }

    /// The user tables, sorted (the history table included).
    pub async fn tables(&self) -> Vec<String> {
        let sql = match self.engine {
            Engine::Postgres => "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            Engine::MariaDb => "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY 1",
            Engine::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
        };
        // The runner's own neighbours of sqlx's table (fingerprints, repairs, the lock row)
        // are its bookkeeping, not the schema a test looks at.
        let mut tables = self.conn().await.strings(sql).await;
        tables.retain(|t| !t.starts_with("_sqlx_migrations_"));
        tables
    }

    /// `_sqlx_migrations` as (version, description, success, checksum hex).
    pub async fn history(&self) -> Vec<(i64, String, bool, String)> {
        self.conn().await.history().await
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.conn().await.scalar(sql).await
    }

    pub async fn execute(&self, sql: &str) {
        self.conn().await.execute(sql).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (name, engine) = (self.name.clone(), self.engine);
        if engine == Engine::Sqlite {
            return;
        }
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let sql = format!("DROP DATABASE IF EXISTS {name}");
                match engine {
                    Engine::Postgres => {
                        if let Ok(mut c) = PgConnection::connect(POSTGRES_ADMIN).await {
                            let _ = sqlx::raw_sql(AssertSqlSafe(format!("{sql} WITH (FORCE)")))
                                .execute(&mut c)
                                .await;
                        }
                    }
                    _ => {
                        if let Ok(mut c) = MySqlConnection::connect(MARIADB_ADMIN).await {
                            let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await;
                        }
                    }
                }
            })
        })
        .join();
    }
}

pub enum Conn {
    Postgres(PgConnection),
    MySql(MySqlConnection),
    Sqlite(SqliteConnection),
}

macro_rules! on {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Postgres($c) => $body,
            Conn::MySql($c) => $body,
            Conn::Sqlite($c) => $body,
        }
    };
}

impl Conn {
    pub async fn strings(&mut self, sql: &str) -> Vec<String> {
        on!(self, c => sqlx::query_scalar(AssertSqlSafe(sql.to_string())).fetch_all(c).await.unwrap())
    }

    pub async fn scalar(&mut self, sql: &str) -> i64 {
        on!(self, c => sqlx::query_scalar(AssertSqlSafe(sql.to_string())).fetch_one(c).await.unwrap())
    }

    pub async fn execute(&mut self, sql: &str) {
        on!(self, c => { sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(c).await.unwrap(); })
    }

    pub async fn history(&mut self) -> Vec<(i64, String, bool, String)> {
        let sql =
            "SELECT version, description, success, checksum FROM _sqlx_migrations ORDER BY version";
        let rows: Vec<(i64, String, bool, Vec<u8>)> =
            on!(self, c => sqlx::query_as(sql).fetch_all(c).await.unwrap());
        rows.into_iter()
            .map(|(v, d, s, c)| (v, d, s, hex::encode(c)))
            .collect()
    }
}

/// The runner binary behind its own Runtime API host and local AWS endpoints.
pub struct Runner {
    pub function: LocalFunction,
}

impl Runner {
    pub async fn start(timeout: Duration, env: &[(&str, &str)]) -> Self {
        let function = LocalFunction::start(
            "migration-runner",
            env!("CARGO_BIN_EXE_migration-runner"),
            timeout,
            env,
        )
        .await
        .expect("function host starts");
        function.aws.s3.create_bucket(ARTIFACTS).unwrap();
        Self { function }
    }

    pub async fn default() -> Self {
        Self::start(Duration::from_secs(60), &[]).await
    }

    /// Runs one job: `files` zipped under `db/migrations/`, the database's secret, and
    /// `params` on top of the required ones.
    pub async fn run(&self, db: &TestDb, files: &[(&str, &str)], params: Value) -> JobRun {
        let entries: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(name, sql)| (format!("{FOLDER}/{name}"), sql.as_bytes().to_vec()))
            .collect();
        self.run_zip(
            db,
            pipeline_local::zips::zip_files(&entries).unwrap(),
            params,
        )
        .await
    }

    pub async fn run_zip(&self, db: &TestDb, zip: Vec<u8>, params: Value) -> JobRun {
        let arn = format!(
            "arn:aws:secretsmanager:us-east-1:111111111111:secret:{}",
            db.name
        );
        self.function.aws.secrets.put(&arn, db.secret.clone());
        self.run_with_secret(&arn, zip, params).await
    }

    /// As [`Runner::run`], with the database's secret in `account` (another account than
    /// the pipeline's): only a role of that account reads it.
    pub async fn run_in_account(
        &self,
        account: &str,
        db: &TestDb,
        files: &[(&str, &str)],
        params: Value,
    ) -> JobRun {
        let arn = format!(
            "arn:aws:secretsmanager:us-east-1:{account}:secret:{}",
            db.name
        );
        self.function
            .aws
            .secrets
            .put_in(account, &arn, db.secret.clone());
        let entries: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(name, sql)| (format!("{FOLDER}/{name}"), sql.as_bytes().to_vec()))
            .collect();
        let zip = pipeline_local::zips::zip_files(&entries).unwrap();
        self.run_with_secret(&arn, zip, params).await
    }

    async fn run_with_secret(&self, arn: &str, zip: Vec<u8>, params: Value) -> JobRun {
        let key = format!("in/{}.zip", uuid::Uuid::new_v4().simple());
        self.function
            .aws
            .s3
            .put_file(ARTIFACTS, &key, &zip)
            .unwrap();
        let mut user = json!({"database_secret_arn": arn, "input": "Source", "path": FOLDER});
        if let Value::Object(extra) = params {
            user.as_object_mut().unwrap().extend(extra);
        }
        let event = JobEventBuilder::new("migration-runner", &user)
            .input("Source", ARTIFACTS, &key)
            .build();
        self.function.run(event).await.expect("a job event")
    }

    pub fn logs(&self) -> String {
        self.function.logs()
    }
}

pub fn last(run: &JobRun) -> &Value {
    JobRunAssertions::last(run)
}

pub fn variables(run: &JobRun) -> serde_json::Map<String, Value> {
    run.expect_variables()
}

pub fn summary(run: &JobRun) -> String {
    run.summary_text()
}

pub fn failure(run: &JobRun) -> (String, String) {
    run.expect_failure()
}

/// A small schema in three migrations, with a reversible one and a `-- no-transaction` one.
pub fn schema() -> Vec<(&'static str, &'static str)> {
    vec![
        ("20240101000001_create_users.sql", "CREATE TABLE users (\n    id BIGINT PRIMARY KEY,\n    email VARCHAR(200) NOT NULL\n);\n"),
        ("20240101000002_create_orders.up.sql", "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT NOT NULL);\nINSERT INTO users (id, email) VALUES (1, 'first@example.com');\n"),
        ("20240101000002_create_orders.down.sql", "DROP TABLE orders;\n"),
        ("20240101000003_index_orders.sql", "-- no-transaction\nCREATE INDEX orders_user ON orders (user_id);\n"),
    ]
}
