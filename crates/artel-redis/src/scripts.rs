//! The Lua scripts, loaded once; `invoke_async` runs them by SHA (EVALSHA) and loads
//! them again if the server forgot them.

use redis::Script;

/// Every state transition of the broker, one script each (see `lua/*.lua` headers).
pub(crate) struct Scripts {
    pub(crate) enqueue: Script,
    pub(crate) claim: Script,
    pub(crate) ack: Script,
    pub(crate) release: Script,
    pub(crate) bury: Script,
    pub(crate) extend: Script,
    pub(crate) purge: Script,
    pub(crate) store_result: Script,
    pub(crate) complete: Script,
}

impl Scripts {
    pub(crate) fn load() -> Self {
        Self {
            enqueue: Script::new(include_str!("../lua/enqueue.lua")),
            claim: Script::new(include_str!("../lua/claim.lua")),
            ack: Script::new(include_str!("../lua/ack.lua")),
            release: Script::new(include_str!("../lua/release.lua")),
            bury: Script::new(include_str!("../lua/bury.lua")),
            extend: Script::new(include_str!("../lua/extend.lua")),
            purge: Script::new(include_str!("../lua/purge.lua")),
            store_result: Script::new(include_str!("../lua/store_result.lua")),
            complete: Script::new(include_str!("../lua/complete.lua")),
        }
    }
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scripts")
    }
}
