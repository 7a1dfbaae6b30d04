//! `cargo run -p recipes -- [NAME]`: runs one recipe, or every one in turn.

use std::process::ExitCode;

fn main() -> ExitCode {
    // In a child of the process-pool recipe: serve its calls and exit.
    artel::pool::serve_if_child(&recipes::process_pool::functions());
    let wanted = std::env::args().nth(1);
    let chosen: Vec<_> = recipes::RECIPES.iter().filter(|r| wanted.as_deref().is_none_or(|w| w == r.name)).collect();
    if chosen.is_empty() {
        eprintln!("no recipe {:?}; the recipes are:", wanted.unwrap_or_default());
        for recipe in recipes::RECIPES {
            eprintln!("  {:<28} {}", recipe.name, recipe.what);
        }
        return ExitCode::from(2);
    }
    for recipe in chosen {
        println!("== {}: {}", recipe.name, recipe.what);
        if let Err(error) = (recipe.run)() {
            eprintln!("{} failed: {error:#}", recipe.name);
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
