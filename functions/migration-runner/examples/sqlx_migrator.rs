//! The benchmark's reference: the `sqlx` library's own `Migrator::run` on a folder of
//! migrations, timed from reading the folder to the last migration applied.
//!
//! `cargo run --release -p migration-runner --example sqlx_migrator -- DIR DATABASE_URL`

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(url)) = (args.next(), args.next()) else {
        return Err("usage: sqlx_migrator DIR POSTGRES_URL".into());
    };
    let started = Instant::now();
    let migrator = Migrator::new(std::path::Path::new(&dir)).await?;
    let mut conn = PgConnection::connect(&url).await?;
    migrator.run(&mut conn).await?;
    let elapsed = started.elapsed();
    conn.close().await?;
    println!(
        "{{\"ms\": {:.3}, \"migrations\": {}}}",
        elapsed.as_secs_f64() * 1000.0,
        migrator.iter().count()
    );
    Ok(())
}
