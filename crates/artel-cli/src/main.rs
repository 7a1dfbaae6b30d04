//! The `artel` command line.

mod bench;
mod demo;
mod table;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: jobs are allocated on one thread and freed on another, which glibc's
/// allocator handles several times slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// artel: scale work from one function call to a cluster.
#[derive(Debug, Parser)]
#[command(name = "artel", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fan out simulated I/O calls through the local async pool and report the speed-up.
    Demo(demo::DemoArgs),
    /// Measure artel against its Python peers, side by side in one run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(command) => bench::run(&command),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("artel: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}
