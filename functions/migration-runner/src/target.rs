//! Which database to connect to: the RDS-format secret, completed by `UserParameters` for
//! RDS-managed secrets that hold only the credentials.

use crate::engine::{engine_built_in, Engine, SQLITE_BUILT_IN};
use crate::params::Params;
use pipeline_ext::job::JobError;
use std::fmt;
use std::net::IpAddr;

/// The secret as Secrets Manager holds it. RDS writes `port` as a number, people often as a
/// string; both are accepted. `dbInstanceIdentifier`/`dbClusterIdentifier` (RDS-managed
/// secrets) name what a snapshot is taken of; other keys are ignored.
struct DatabaseSecret {
    /// RDS-managed secrets: the instance.
    db_instance_identifier: Option<String>,
    /// RDS-managed secrets: the Aurora cluster.
    db_cluster_identifier: Option<String>,
    /// `postgres`, `mysql`, `mariadb`…
    engine: Option<String>,
    /// The host.
    host: Option<String>,
    /// The port.
    port: Option<u16>,
    /// The user.
    username: Option<String>,
    /// The password.
    password: Option<String>,
    /// The database.
    dbname: Option<String>,
}

impl DatabaseSecret {
    /// Reads the keys one by one, so an error names the key and never quotes a value or a
    /// position in the secret.
    fn parse(json: &str) -> Result<Self, JobError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(|_| {
            JobError::config("the database secret is not JSON; expected an RDS-format object")
        })?;
        let serde_json::Value::Object(object) = value else {
            return Err(JobError::config(
                "the database secret is not a JSON object; expected the RDS format (`engine`, `host`, `port`, `username`, `password`, `dbname`)",
            ));
        };
        let text = |key: &str| -> Result<Option<String>, JobError> {
            match object.get(key) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(JobError::config(format!(
                    "the database secret's `{key}`: expected a string"
                ))),
            }
        };
        let port_error = || JobError::config("the database secret's `port`: expected 1–65535");
        let port = match object.get("port") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => Some(
                n.as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(port_error)?,
            ),
            Some(serde_json::Value::String(s)) => Some(
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(port_error)?,
            ),
            Some(_) => return Err(port_error()),
        };
        Ok(Self {
            db_instance_identifier: text("dbInstanceIdentifier")?,
            db_cluster_identifier: text("dbClusterIdentifier")?,
            engine: text("engine")?,
            host: text("host")?,
            port,
            username: text("username")?,
            password: text("password")?,
            dbname: text("dbname")?,
        })
    }
}

/// Everything needed to connect. `Debug` never shows the password.
#[derive(Clone)]
pub struct ConnectTarget {
    /// The engine.
    pub engine: Engine,
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The user.
    pub username: String,
    /// The password (never shown by `Debug`).
    pub password: String,
    /// The database name (for SQLite, the file path).
    pub dbname: String,
    /// How the connection is encrypted.
    pub tls: TlsPolicy,
    /// The RDS instance or cluster named by the secret, for snapshots.
    pub rds_instance: Option<String>,
    /// The Aurora cluster, for a snapshot.
    pub rds_cluster: Option<String>,
}

impl fmt::Debug for ConnectTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectTarget")
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("dbname", &self.dbname)
            .field("tls", &self.tls)
            .finish()
    }
}

/// How the connection is encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsPolicy {
    /// Loopback: TLS when the server offers it.
    Preferred,
    /// Any other host: TLS or no connection.
    Required,
    /// TLS with the server's certificate and name checked against this CA file.
    Verified { ca_file: String },
}

impl ConnectTarget {
    /// What the run summary shows: engine, host and database, never the credentials.
    pub fn describe(&self) -> String {
        match self.engine {
            Engine::Sqlite => format!("sqlite database `{}`", self.dbname),
            engine => format!(
                "{engine} database `{}` on {}:{}",
                self.dbname, self.host, self.port
            ),
        }
    }

    /// Builds the target from the secret's JSON and the parameters.
    pub fn resolve(secret_json: &str, params: &Params) -> Result<Self, JobError> {
        let secret = DatabaseSecret::parse(secret_json)?;
        let engine_name = pick("engine", secret.engine, params.engine.clone())?
            .ok_or_else(|| missing("engine"))?;
        let engine = Engine::parse(&engine_name).ok_or_else(|| {
            JobError::config(format!(
                "engine `{engine_name}` is not supported; expected postgres, mysql, mariadb, aurora-postgresql, aurora-mysql or sqlite"
            ))
        })?;
        engine_built_in(engine, SQLITE_BUILT_IN)?;
        let dbname = pick("dbname", secret.dbname, params.dbname.clone())?
            .ok_or_else(|| missing("dbname"))?;
        if dbname.trim().is_empty() {
            return Err(JobError::config(
                "`dbname` is empty; name the database (for SQLite, a file path)",
            ));
        }
        if engine == Engine::Sqlite {
            if is_in_memory(&dbname) {
                return Err(JobError::config(format!(
                    "`dbname` `{dbname}` is a SQLite database in memory, gone when the run ends; give a file path"
                )));
            }
            return Ok(Self {
                engine,
                host: String::new(),
                port: 0,
                username: String::new(),
                password: String::new(),
                dbname,
                tls: TlsPolicy::Preferred,
                rds_instance: secret.db_instance_identifier,
                rds_cluster: secret.db_cluster_identifier,
            });
        }
        let secret_port = secret.port;
        let host =
            pick("host", secret.host, params.host.clone())?.ok_or_else(|| missing("host"))?;
        let port = pick("port", secret_port, params.port)?.unwrap_or(engine.default_port());
        let username = secret
            .username
            .ok_or_else(|| JobError::config("the database secret has no `username`"))?;
        let password = secret
            .password
            .ok_or_else(|| JobError::config("the database secret has no `password`"))?;
        let tls = match &params.tls_ca_file {
            Some(ca_file) => TlsPolicy::Verified {
                ca_file: ca_file.clone(),
            },
            None if is_loopback(&host) => TlsPolicy::Preferred,
            None => TlsPolicy::Required,
        };
        Ok(Self {
            engine,
            host,
            port,
            username,
            password,
            dbname,
            tls,
            rds_instance: secret.db_instance_identifier,
            rds_cluster: secret.db_cluster_identifier,
        })
    }
}

/// A value from the secret or from the parameters; both is a conflict unless they agree.
fn pick<T: PartialEq + fmt::Debug>(
    key: &str,
    from_secret: Option<T>,
    from_params: Option<T>,
) -> Result<Option<T>, JobError> {
    match (from_secret, from_params) {
        (Some(a), Some(b)) if a != b => Err(JobError::config(format!(
            "`{key}` is {b:?} in UserParameters but {a:?} in the database secret; give it in one place"
        ))),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// A required setting neither the secret nor the parameters give.
fn missing(key: &str) -> JobError {
    JobError::config(format!(
        "no `{key}`: neither the database secret nor UserParameters give one"
    ))
}

/// A SQLite database in memory (gone when the run ends).
fn is_in_memory(dbname: &str) -> bool {
    let name = dbname.trim();
    name == ":memory:"
        || name.starts_with("file::memory:")
        || name.contains("mode=memory")
        || name.trim_start_matches("sqlite:").trim_start_matches("//") == ":memory:"
}

/// A host on this machine.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(extra: serde_json::Value) -> Params {
        let mut value = serde_json::json!({"database_secret_arn": "arn:x", "input": "Source"});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn reads_an_rds_secret_and_requires_tls_away_from_loopback() {
        let secret = r#"{"engine":"postgres","host":"db.abc.eu-west-1.rds.amazonaws.com","port":5432,"username":"app","password":"s3cr3t!","dbname":"orders","dbInstanceIdentifier":"orders-db"}"#;
        let target = ConnectTarget::resolve(secret, &params(serde_json::json!({}))).unwrap();
        assert_eq!(target.engine, Engine::Postgres);
        assert_eq!(target.tls, TlsPolicy::Required);
        assert!(!format!("{target:?}").contains("s3cr3t!"));
    }

    #[test]
    fn completes_an_rds_managed_secret_from_the_parameters() {
        let secret = r#"{"username":"app","password":"pw"}"#;
        let target = ConnectTarget::resolve(
            secret,
            &params(serde_json::json!({"engine": "aurora-mysql", "host": "127.0.0.1", "dbname": "shop"})),
        )
        .unwrap();
        assert_eq!(target.engine, Engine::MySql);
        assert_eq!(target.port, 3306);
        assert_eq!(target.tls, TlsPolicy::Preferred);
    }

    #[test]
    fn refuses_conflicts_and_gaps_without_quoting_the_password() {
        let secret =
            r#"{"engine":"postgres","host":"a","username":"u","password":"hunter2","dbname":"x"}"#;
        let err =
            ConnectTarget::resolve(secret, &params(serde_json::json!({"host": "b"}))).unwrap_err();
        assert!(err.message.contains("`host`"), "{}", err.message);
        let err = ConnectTarget::resolve(
            r#"{"username":"u","password":"hunter2"}"#,
            &params(serde_json::json!({"engine": "postgres"})),
        )
        .unwrap_err();
        assert!(err.message.contains("no `dbname`"), "{}", err.message);
        let err =
            ConnectTarget::resolve(r#"{"password": hunter2}"#, &params(serde_json::json!({})))
                .unwrap_err();
        assert!(!err.message.contains("hunter2"), "{}", err.message);
    }

    #[test]
    fn secret_shape_errors_name_the_key_and_never_a_position_or_a_value() {
        for (secret, expected) in [
            (
                r#"{"engine":"postgres","host":"h","port":70000,"username":"u","password":"hunter2","dbname":"d"}"#,
                "`port`: expected 1–65535",
            ),
            (
                r#"{"engine":"postgres","host":"h","port":"x5432","username":"u","password":"hunter2","dbname":"d"}"#,
                "`port`: expected 1–65535",
            ),
            (
                r#"{"engine":"postgres","host":"h","port":0,"username":"u","password":"hunter2","dbname":"d"}"#,
                "`port`: expected 1–65535",
            ),
            (
                r#"{"engine":"postgres","host":["h"],"username":"u","password":"hunter2","dbname":"d"}"#,
                "`host`: expected a string",
            ),
            (r#"["hunter2"]"#, "not a JSON object"),
        ] {
            let err = ConnectTarget::resolve(secret, &params(serde_json::json!({}))).unwrap_err();
            assert!(err.message.contains(expected), "{}", err.message);
            assert!(
                !err.message.contains("hunter2") && !err.message.contains("column"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn a_build_without_sqlite_refuses_a_sqlite_target_as_configuration() {
        let err = engine_built_in(Engine::Sqlite, false).unwrap_err();
        assert_eq!(err.kind, pipeline_ext::job::FailureKind::ConfigurationError);
        assert!(
            err.message.contains("engine `sqlite` is not in this build"),
            "{}",
            err.message
        );
        for engine in [Engine::Postgres, Engine::MySql] {
            assert!(engine_built_in(engine, false).is_ok());
        }
        assert!(engine_built_in(Engine::Sqlite, true).is_ok());
    }

    #[test]
    fn an_in_memory_or_unnamed_sqlite_database_is_a_configuration_error() {
        for dbname in [
            ":memory:",
            "file::memory:?cache=shared",
            "file:x?mode=memory",
            "  ",
        ] {
            let secret = serde_json::json!({"engine": "sqlite", "dbname": dbname}).to_string();
            let err = ConnectTarget::resolve(&secret, &params(serde_json::json!({}))).unwrap_err();
            assert!(err.message.contains("`dbname`"), "{}", err.message);
        }
    }
}
