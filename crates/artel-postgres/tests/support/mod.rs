//! What the PostgreSQL tests share: the server's URL and a schema dropped at the end.
// Each test binary uses part of it.
#![allow(dead_code, unreachable_pub)]

/// The server the tests use (`ARTEL_POSTGRES_URL`, else the local one).
pub fn url() -> String {
    std::env::var("ARTEL_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Drops the named schema when dropped, on a connection of its own (the test's runtime
/// may be gone by then).
pub struct Schema(pub String);

impl Drop for Schema {
    fn drop(&mut self) {
        let schema = self.0.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                if let Ok(pool) = sqlx::PgPool::connect(&url()).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&pool).await;
                }
            });
        })
        .join()
        .ok();
    }
}
