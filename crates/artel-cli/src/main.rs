//! The `artel` binary: the artel CLI with the built-in tasks, plus `demo` and `bench`,
//! which measure artel itself and so live here rather than in the library.

mod bench;
mod bench_broker;
mod bench_dashboard;
mod child;
mod demo;

use std::process::ExitCode;

use clap::Subcommand;

/// mimalloc: jobs are allocated on one thread and freed on another, which glibc's
/// allocator handles several times slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The `artel` binary's commands beyond the library's.
#[derive(Debug, Subcommand)]
enum Own {
    /// Fan out 10,000 simulated 100 ms calls through a worker process and report the speed-up.
    Demo(demo::DemoArgs),
    /// Measure artel against its Python peers, side by side in one run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

impl artel::cli::Extra for Own {
    fn run(self, broker: Option<&str>) -> anyhow::Result<ExitCode> {
        match self {
            Own::Demo(args) => demo::run(&args, broker),
            Own::Bench(command) => bench::run(&command, broker),
        }
    }

    fn child_functions() -> artel::pool::Functions {
        bench::child_functions()
    }
}

fn main() -> ExitCode {
    artel::cli::main_with::<Own>(artel::Registry::new())
}
