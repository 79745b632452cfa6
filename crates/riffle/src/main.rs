//! The `riffle` binary: argument parsing only; the work is in [`riffle::run`].

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = riffle::cli::Cli::parse();
    riffle::run(cli)
}
