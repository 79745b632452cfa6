//! The `riffle` command: `riffle serve` runs the server, `riffle bench`
//! loads any Kinesis endpoint.

pub mod bench;
pub mod cli;
pub mod health;
pub mod init;
pub mod serve;

/// Runs a parsed command line.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Serve(args) => serve::run(*args),
        cli::Command::Bench(args) => bench::run(args),
        cli::Command::Health(args) => health::run(args),
    }
}
