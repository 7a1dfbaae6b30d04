//! The Lua scripts, loaded once; `invoke_async` runs them by SHA (EVALSHA) and loads
//! them again if the server forgot them.

use redis::Script;

/// A script with the shared helpers of `lua/lib/` in front of it.
macro_rules! with_common {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("../lua/lib/result.lua"),
            include_str!("../lua/lib/common.lua"),
            include_str!(concat!("../lua/", $file))
        ))
    };
}

/// Every state transition of the broker, one script each (see `lua/*.lua` headers).
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) claim: Script,
    pub(crate) ack: Script,
    pub(crate) release: Script,
    pub(crate) bury: Script,
    pub(crate) fail: Script,
    pub(crate) extend: Script,
    pub(crate) purge: Script,
    pub(crate) complete: Script,
    pub(crate) chord_part: Script,
}

impl Scripts {
    pub(crate) fn load() -> Self {
        Self {
            enqueue: with_common!("enqueue.lua"),
            claim: with_common!("claim.lua"),
            ack: with_common!("ack.lua"),
            release: with_common!("release.lua"),
            bury: with_common!("bury.lua"),
            fail: with_common!("fail.lua"),
            extend: Script::new(include_str!("../lua/extend.lua")),
            purge: Script::new(include_str!("../lua/purge.lua")),
            complete: with_common!("complete.lua"),
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
    fn the_lua_result_guard_lists_exactly_the_ready_states() {
        let lua = include_str!("../lua/lib/result.lua");
        let guard = lua.lines().find(|l| l.contains("if state ==")).expect("the guard line");
        artel_broker_tests::assert_guard_names_exactly_the_ready_states(guard);
    }
}
