//! The `cgscope` binary: parses flags, sets up logging, runs one command, maps errors to a
//! message and a non-zero exit code. All work lives in the library.

#![forbid(unsafe_code)]

use cgscope::cli::{Cli, Command};
use cgscope::commands;
use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

fn main() -> ExitCode {
    let cli = Cli::parse();
    use std::io::IsTerminal;
    // The daemon says what it found at start (layout, runtimes, where to look) and when it
    // stops; the one-shot commands and `top` (which owns the terminal) speak only of trouble.
    let default_level = match cli.command {
        Command::Serve(_) => LevelFilter::INFO,
        _ => LevelFilter::WARN,
    };
    // `RUST_LOG` as `level` or `target=level,...`; one it cannot parse is said and ignored.
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => spec.parse::<Targets>().unwrap_or_else(|err| {
            eprintln!("cgscope: RUST_LOG={spec:?} ignored: {err}");
            Targets::new().with_default(default_level)
        }),
        Err(_) => Targets::new().with_default(default_level),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour only for people: log collectors get plain text.
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
    let roots = cli.roots.to_roots();
    let result = match &cli.command {
        Command::Snapshot { format } => commands::snapshot::run(&roots, &cli.runtimes, *format),
        Command::Serve(args) => commands::serve::run(&roots, &cli.runtimes, args),
        Command::Top(args) => commands::top::run(&roots, &cli.runtimes, args),
        Command::Capture { dir } => commands::capture::run(&roots, &cli.runtimes, dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cgscope: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
