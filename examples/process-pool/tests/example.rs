//! The example binary, run as a user would: children are the binary itself, started in
//! the child role by the one line at the top of `main`.

use std::process::Command;

#[test]
fn the_example_runs_fib_in_children_and_survives_a_crash_and_a_runaway() {
    let output = Command::new(env!("CARGO_BIN_EXE_process-pool")).output().expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("fib(20..30) = [6765,10946,17711,28657,46368,75025,121393,196418,317811,514229]"),
        "{stdout}"
    );
    assert!(stdout.contains("WorkerLostError") && stdout.contains("SIGABRT"), "{stdout}");
    assert!(stdout.contains("TimeLimitExceeded"), "{stdout}");
    assert!(stdout.contains("fib(10) afterwards = 55"), "{stdout}");
}
