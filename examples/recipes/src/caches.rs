//! Python:
//! ```python
//! cache = cachetools.TTLCache(maxsize=1024, ttl=600)     # in process, LRU + TTL
//! @cachetools.cached(cache)                               # 100 threads missing at once
//! def price(sku): ...                                     # all compute it
//! v, cas = mc.gets("visits"); mc.cas("visits", v + 1, cas) # memcached: retry on conflict
//! ```
//! artel's [`Cache`] is one API over this process's LRU ([`LocalCache`], bounded in
//! bytes), Redis, memcached and the SQL brokers: `get_or_compute` computes a missing key
//! once however many callers miss it together (single flight), and `update` is the
//! check-and-set loop done for you. A failing store degrades to computing, never to an
//! error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::ensure;
use artel::cache::{Cache, LocalCache};
use artel::memcached::MemcachedCache;

/// Runs the recipe.
pub fn run() -> anyhow::Result<()> {
    let runtime = crate::runtime()?;
    let cache = Arc::new(Cache::new(LocalCache::new(64 << 20)));
    let computed = Arc::new(AtomicU32::new(0));
    // --8<-- [start:single-flight]
    let prices = runtime.block_on(async {
        let callers = (0..100).map(|_| {
            let (cache, computed) = (cache.clone(), computed.clone());
            tokio::spawn(async move {
                cache
                    .get_or_compute("price:sku-42", Some(Duration::from_secs(600)), || async {
                        computed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<u64, String>(1999)
                    })
                    .await
            })
        });
        let mut prices = Vec::new();
        for caller in callers.collect::<Vec<_>>() {
            prices.push(caller.await?.map_err(anyhow::Error::msg)?);
        }
        anyhow::Ok(prices)
    })?;
    // --8<-- [end:single-flight]
    let computations = computed.load(Ordering::Relaxed);
    ensure!(prices.iter().all(|p| *p == 1999) && computations == 1, "100 misses, {computations} computations");
    println!("100 concurrent misses of one key: computed {computations} time, 100 answers");

    // Two writers adding 100 each to one counter: check-and-set loses no increment.
    let total = runtime.block_on(two_writers(&cache))?;
    ensure!(total == Some(200), "2 x 100 increments: {total:?}");
    println!("2 writers x 100 check-and-set increments: {}", total.unwrap_or_default());
    // The same through memcached's gets/cas, when one runs (`ARTEL_MEMCACHED=host:port`).
    if let Ok(address) = std::env::var("ARTEL_MEMCACHED") {
        let prefix = format!("artel-recipe-{}:", uuid::Uuid::new_v4().simple());
        let shared = Arc::new(Cache::new(runtime.block_on(MemcachedCache::connect(&address, &prefix))?));
        let total = runtime.block_on(two_writers(&shared))?;
        runtime.block_on(shared.delete("visits"));
        ensure!(total == Some(200), "2 x 100 increments on memcached: {total:?}");
        println!("the same on memcached at {address}: {}", total.unwrap_or_default());
    }

    // A time to live, as TTLCache's.
    let expired = runtime.block_on(async {
        cache.set("session", &"abc", Some(Duration::from_millis(50))).await;
        let fresh = cache.get::<String>("session").await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        (fresh, cache.get::<String>("session").await)
    });
    ensure!(expired == (Some("abc".to_owned()), None), "kept for 50 ms, then gone: {expired:?}");
    println!("a value with a 50 ms TTL: there, then gone");
    Ok(())
}

/// Two writers adding 100 each to `visits`; the count they leave.
async fn two_writers(cache: &Arc<Cache>) -> anyhow::Result<Option<u64>> {
    let writers = (0..2).map(|_| {
        let cache = cache.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                cache.update("visits", None, |n: Option<u64>| n.unwrap_or(0) + 1).await?;
            }
            anyhow::Ok(())
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await??;
    }
    Ok(cache.get::<u64>("visits").await)
}
