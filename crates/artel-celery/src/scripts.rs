//! The Lua scripts (see the KEYS/ARGV/Returns header of each in `lua/`), loaded once.

use redis::Script;

/// A script with the result helper (`write_result`, shared with artel-redis) in front of it.
fn with_result(script: &str) -> Script {
    Script::new(&format!("{}{script}", artel_redis::toolkit::RESULT_LUA))
}

/// Every state transition of the Celery layout that needs more than one command.
pub(crate) struct Scripts {
    pub(crate) claim: Script,
    pub(crate) ack: Script,
    pub(crate) restore: Script,
    pub(crate) sweep: Script,
    pub(crate) complete: Script,
    pub(crate) chord_part: Script,
}

impl Scripts {
    pub(crate) fn load() -> Self {
        Self {
            claim: Script::new(concat!(include_str!("../lua/lib/held.lua"), include_str!("../lua/claim.lua"))),
            ack: Script::new(include_str!("../lua/ack.lua")),
            restore: Script::new(concat!(include_str!("../lua/lib/held.lua"), include_str!("../lua/restore.lua"))),
            sweep: Script::new(concat!(include_str!("../lua/lib/held.lua"), include_str!("../lua/sweep.lua"))),
            complete: with_result(include_str!("../lua/complete.lua")),
            chord_part: Script::new(include_str!("../lua/chord_part.lua")),
        }
    }
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripts")
    }
}

#[cfg(test)]
mod tests {
    /// The final states the Lua guard keeps must be exactly the ready states.
    #[test]
    fn the_result_guard_lists_exactly_the_ready_states() {
        let lua = artel_redis::toolkit::RESULT_LUA;
        let guard = lua.lines().find(|l| l.contains("if state ==")).expect("the guard line");
        artel_broker_tests::assert_guard_names_exactly_the_ready_states(guard);
    }
}
