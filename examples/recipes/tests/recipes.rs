//! Every recipe runs and checks its own output.

/// Runs the recipe in the `recipes` binary, for recipes that start it again as children.
fn run_binary(name: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_recipes")).arg(name).output().expect("recipes runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name}: {stdout}{stderr}");
    assert!(stdout.starts_with(&format!("== {name}:")), "it ran the recipe: {stdout}");
}

fn run(name: &str) {
    let recipe = recipes::RECIPES.iter().find(|r| r.name == name).expect("a recipe of that name");
    if let Err(error) = (recipe.run)() {
        panic!("{name}: {error:#}");
    }
}

#[test]
fn every_recipe_is_tested_here() {
    let source = include_str!("recipes.rs");
    for recipe in recipes::RECIPES {
        let tested = ["run", "run_binary"].iter().any(|f| source.contains(&format!("{f}(\"{}\")", recipe.name)));
        assert!(tested, "{} has no test", recipe.name);
    }
}

#[test]
fn thread_pool() {
    run("thread-pool");
}

#[test]
fn futures_waiting_on_futures() {
    run("futures-waiting-on-futures");
}

#[test]
fn many_short_calls() {
    run("many-short-calls");
}

#[test]
fn rejecting_and_periodic() {
    run("rejecting-and-periodic");
}

#[test]
fn blocking_in_async() {
    run("blocking-in-async");
}

#[test]
fn retries() {
    run("retries");
}

#[test]
fn locks() {
    run("locks");
}

#[test]
fn caches() {
    run("caches");
}

#[test]
fn task_queue() {
    run("task-queue");
}

#[test]
fn services() {
    run("services");
}

#[test]
fn jobs() {
    run("jobs");
}

#[test]
fn process_pool() {
    run_binary("process-pool");
}

#[test]
fn where_the_time_goes() {
    run("where-the-time-goes");
}
