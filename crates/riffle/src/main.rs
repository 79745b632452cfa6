//! The `riffle` binary: argument parsing only; the work is in [`riffle::run`].

use clap::Parser;

/// The request path allocates many small buffers; mimalloc keeps that cheap
/// under concurrency.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = riffle::cli::Cli::parse();
    riffle::run(cli)
}
