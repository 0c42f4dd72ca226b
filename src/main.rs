//! The `cgscope` binary: parses flags, sets up logging, runs one command, maps errors to a
//! message and a non-zero exit code. All work lives in the library.

#![forbid(unsafe_code)]

use cgscope::cli::{Cli, Command};
use cgscope::commands;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    use std::io::IsTerminal;
    // The daemon says what it found at start (layout, runtimes, where to look) and when it
    // stops; the one-shot commands and `top` (which owns the terminal) speak only of trouble.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour only for people: log collectors get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
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
