//! The `artel` binary: the artel CLI with the built-in tasks.

use std::process::ExitCode;

/// mimalloc: jobs are allocated on one thread and freed on another, which glibc's
/// allocator handles several times slower.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    artel::cli::main(artel::Registry::new())
}
