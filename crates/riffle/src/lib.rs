//! The `riffle` command: `riffle serve` runs the server, `riffle bench`
//! loads any Kinesis endpoint, `riffle fsck` and `riffle repair` check and
//! mend a stopped server's stream logs, `riffle demo` runs a reference
//! pipeline end to end, `riffle video put` uploads a Matroska file to a
//! Kinesis Video stream, and `riffle put`, `riffle tail` and `riffle
//! streams` put, follow and list Kinesis data streams on any endpoint.

pub mod analytics_sink;
pub mod bench;
pub mod cli;
pub mod cli_tools;
pub mod demo;
pub mod fsck;
pub mod health;
pub mod init;
pub mod s3_sink;
pub mod serve;
pub mod video;

/// Runs a parsed command line.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        cli::Command::Serve(args) => serve::run(*args),
        cli::Command::Bench(args) => bench::run(args),
        cli::Command::Health(args) => health::run(args),
        cli::Command::Fsck(args) => fsck::run_fsck(args),
        cli::Command::Repair(args) => fsck::run_repair(args),
        cli::Command::Demo(args) => demo::run(args),
        cli::Command::Video(args) => video::run(args),
        cli::Command::Put(args) => cli_tools::put::run(args),
        cli::Command::Tail(args) => cli_tools::tail::run(args),
        cli::Command::Streams(args) => cli_tools::streams::run(args),
    }
}
