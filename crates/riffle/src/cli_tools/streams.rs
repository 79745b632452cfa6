//! `riffle streams`: a table of the endpoint's streams.

use crate::cli::StreamsArgs;

pub fn run(_args: StreamsArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
