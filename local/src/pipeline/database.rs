//! The database the example pipeline migrates: a SQLite file in the state folder by default,
//! or the server of `--database-url`, handed to migration-runner as an RDS-format secret.

use serde_json::{json, Value};
use std::path::Path;

/// The database the example pipeline migrates.
pub struct DatabaseTarget {
    /// The secret's JSON.
    pub secret: Value,
    /// What to tell the reader (no password).
    pub label: String,
}

impl DatabaseTarget {
    /// `--database-url`, else a SQLite file in the state folder.
    pub fn new(url: Option<&str>, state_dir: &Path) -> Result<Self, String> {
        let Some(url) = url else {
            let file = state_dir.join("demo.sqlite");
            return Ok(Self {
                label: format!("SQLite {}", file.display()),
                secret: json!({"engine": "sqlite", "dbname": file.display().to_string()}),
            });
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            format!(
                "--database-url {}: expected postgres://… or mysql://…",
                redact(url)
            )
        })?;
        let engine = match scheme {
            "postgres" | "postgresql" => "postgres",
            "mysql" => "mysql",
            "mariadb" => "mariadb",
            other => {
                return Err(format!(
                    "--database-url: unsupported scheme {other:?}; use postgres:// or mysql://"
                ))
            }
        };
        let (authority, dbname) = rest.split_once('/').ok_or_else(|| {
            format!(
                "--database-url {}: no database name after the host",
                redact(url)
            )
        })?;
        let dbname = dbname.split('?').next().unwrap_or_default();
        let (credentials, host_port) = match authority.rsplit_once('@') {
            Some((c, h)) => (Some(c), h),
            None => (None, authority),
        };
        let (username, password) = match credentials {
            Some(c) => match c.split_once(':') {
                Some((u, p)) => (decode(u), decode(p)),
                None => (decode(c), String::new()),
            },
            None => (
                if engine == "postgres" {
                    "postgres"
                } else {
                    "root"
                }
                .to_string(),
                String::new(),
            ),
        };
        let default_port = if engine == "postgres" { 5432 } else { 3306 };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| format!("--database-url {}: bad port {p:?}", redact(url)))?,
            ),
            None => (host_port.to_string(), default_port),
        };
        if host.is_empty() || dbname.is_empty() {
            return Err(format!(
                "--database-url {}: needs a host and a database name",
                redact(url)
            ));
        }
        Ok(Self {
            label: format!("{engine} {host}:{port}/{dbname} as {username}"),
            secret: json!({"engine": engine, "host": host, "port": port, "username": username,
                           "password": password, "dbname": dbname}),
        })
    }
}

fn decode(text: &str) -> String {
    urlencoding::decode(text)
        .map(|s| s.into_owned())
        .unwrap_or_else(|_| text.to_string())
}

/// The URL with its password replaced, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_postgres_url_into_an_rds_secret() {
        let target = DatabaseTarget::new(
            Some("postgres://app:s%40cret@127.0.0.1:5433/shop"),
            Path::new("/tmp"),
        )
        .unwrap();
        assert_eq!(
            target.secret,
            json!({"engine": "postgres", "host": "127.0.0.1", "port": 5433, "username": "app",
                   "password": "s@cret", "dbname": "shop"})
        );
        assert!(!target.label.contains("s@cret"));
        let err = DatabaseTarget::new(Some("postgres://app:hunter2@host"), Path::new("/tmp"))
            .err()
            .unwrap();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
