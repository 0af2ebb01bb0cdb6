//! `auditlog bench` in a binary built without the `bench` feature: a clear error
//! saying how to get the harness, instead of an unknown-subcommand message.

use crate::CliResult;

/// Arguments are accepted and ignored, so any `bench` invocation reaches the message.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(_args: Args) -> CliResult {
    Err(
        "this binary was built without the `bench` feature, which brings in the peers \
         (SQLite, tracing, crossbeam, atd-runtime); run `cargo run --release --features \
         bench -- bench --quick`"
            .into(),
    )
}
