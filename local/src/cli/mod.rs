//! The `pipeline-local` command line: one module per subcommand, each with its arguments and
//! the function that carries it out and returns the exit status.

pub mod console;
pub mod invoke;
pub mod joined_runs;
pub mod run;
pub mod serve;
