//! Redis Sentinel: the master of a monitored set, found and followed through failovers.
//!
//! A watcher asks the sentinels every 250 ms which node is the master, and a forwarder
//! on a loopback port of this process sends every connection to it. When the sentinels
//! promote another node, the forwarder closes the connections to the former master, so
//! every connection of the process — the multiplexed one, idle consumers' blocking
//! reads, result subscriptions — reconnects to the new master without knowing of
//! Sentinel; scripts the new master lacks are loaded again on their first `NOSCRIPT`.
//! Invariant: no connection stays open to a node the sentinels no longer call master.

use std::sync::Arc;
use std::time::Duration;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::toolkit::redis_error;

/// How often the sentinels are asked for the master.
const POLL: Duration = Duration::from_millis(250);
/// Longest wait for a sentinel's or the master's answer.
const PATIENCE: Duration = Duration::from_secs(2);

/// Where the sentinels are and which master they watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelSet {
    /// `host:port` of each sentinel.
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the master under.
    pub master: String,
}

/// The forwarder and its watcher; both stop when this is dropped.
#[derive(Debug)]
pub struct Follower {
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Follower {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Finds the master of `set` and starts following it; returns the loopback address
/// (`127.0.0.1:PORT`) that reaches the current master.
pub(crate) async fn follow(set: SentinelSet) -> BrokerResult<(String, Follower)> {
    let set = Arc::new(set);
    let first = master_of(&set).await?;
    tracing::info!(master = %first, name = %set.master, "the sentinels name the master");
    let (tell, master) = watch::channel(first);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BrokerError::new(BrokerErrorKind::Connection, "opening the Sentinel forwarder").with_source(e))?;
    let address = listener
        .local_addr()
        .map_err(|e| BrokerError::new(BrokerErrorKind::Connection, "opening the Sentinel forwarder").with_source(e))?
        .to_string();
    let watcher = tokio::spawn(watch_master(set, tell));
    let forwarder = tokio::spawn(forward(listener, master));
    Ok((address, Follower { tasks: [watcher, forwarder] }))
}

/// The master's `host:port`, from the first sentinel that knows it.
async fn master_of(set: &SentinelSet) -> BrokerResult<String> {
    let mut last = None;
    for sentinel in &set.sentinels {
        match ask(sentinel, &set.master).await {
            Ok(Some(master)) => return Ok(master),
            Ok(None) => {
                last = Some(BrokerError::new(
                    BrokerErrorKind::Other,
                    format!("sentinel {sentinel} monitors no master named {:?}: check the name in the URL", set.master),
                ));
            }
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| BrokerError::new(BrokerErrorKind::Other, "no sentinel given")))
}

async fn ask(sentinel: &str, name: &str) -> BrokerResult<Option<String>> {
    let asking = |e| redis_error(&format!("asking sentinel {sentinel} for the master"), e);
    let client = redis::Client::open(format!("redis://{sentinel}")).map_err(asking)?;
    let answer = tokio::time::timeout(PATIENCE, async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(name)
            .query_async::<Option<(String, u16)>>(&mut conn)
            .await
    })
    .await
    .map_err(|_| BrokerError::new(BrokerErrorKind::Timeout, format!("sentinel {sentinel} did not answer")))?
    .map_err(asking)?;
    Ok(answer.map(|(host, port)| format!("{host}:{port}")))
}

async fn watch_master(set: Arc<SentinelSet>, tell: watch::Sender<String>) {
    loop {
        tokio::time::sleep(POLL).await;
        match master_of(&set).await {
            Ok(master) if *tell.borrow() != master => {
                tracing::warn!(from = %*tell.borrow(), to = %master, "the sentinels promoted a new master; following it");
                tell.send_replace(master);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "no sentinel answered; staying with the last master"),
        }
    }
}

async fn forward(listener: TcpListener, master: watch::Receiver<String>) {
    while let Ok((mut client, _)) = listener.accept().await {
        let mut master = master.clone();
        tokio::spawn(async move {
            let address = master.borrow_and_update().clone();
            let Ok(Ok(mut server)) = tokio::time::timeout(PATIENCE, TcpStream::connect(&address)).await else {
                // The client sees a closed connection and tries again.
                return;
            };
            // Without it, Nagle's algorithm held each small request behind the previous
            // one's delayed ACK: about 40 ms per round trip through the forwarder.
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                // A new master: this connection goes, the client reconnects to it.
                _ = master.changed() => {}
            }
        });
    }
}

/// A Sentinel URL's parts: `redis+sentinel://[USER:PASSWORD@]H1:P1,H2:P2/MASTER/DB`
/// (artel) or kombu's `sentinel://[:PASSWORD@]H1:P1;sentinel://H2:P2/DB` with `master`
/// given apart (`?master_name=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// The sentinels and the master's name.
    pub set: SentinelSet,
    /// The database on the master.
    pub db: i64,
    /// `USER:PASSWORD@` (or empty) for the master's nodes.
    pub userinfo: String,
}

/// Parses either Sentinel URL form (the query, if any, already removed).
pub fn parse(url: &str, master: Option<&str>) -> Result<SentinelUrl, String> {
    let (authority, path, master) = if let Some(rest) = url.strip_prefix("redis+sentinel://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (name, db) = path.split_once('/').unwrap_or((path, ""));
        let name = (!name.is_empty()).then(|| name.to_owned()).or(master.map(str::to_owned));
        (authority.to_owned(), db.to_owned(), name)
    } else if url.starts_with("sentinel://") {
        let parts: Vec<&str> = url.split(';').map(|p| p.strip_prefix("sentinel://").unwrap_or(p)).collect();
        let path = parts.last().and_then(|last| last.split_once('/')).map_or("", |(_, path)| path);
        let hosts: Vec<&str> = parts.iter().map(|p| p.split_once('/').map_or(*p, |(host, _)| host)).collect();
        (hosts.join(","), path.to_owned(), master.map(str::to_owned))
    } else {
        return Err(format!("not a Sentinel URL: {}", artel_core::redact_url(url)));
    };
    let mut userinfo = String::new();
    let mut sentinels = Vec::new();
    for host in authority.split(',').filter(|h| !h.is_empty()) {
        let host = match host.rsplit_once('@') {
            Some((user, host)) => {
                if userinfo.is_empty() {
                    userinfo = format!("{user}@");
                }
                host
            }
            None => host,
        };
        sentinels.push(host.to_owned());
    }
    if sentinels.is_empty() {
        return Err("name at least one sentinel: redis+sentinel://HOST:26379,HOST:26379/MASTER/DB".to_owned());
    }
    let master = master.ok_or(
        "name the master the sentinels monitor: redis+sentinel://HOSTS/MASTER/DB (or ?master_name= for sentinel://)",
    )?;
    let db = match path.as_str() {
        "" => 0,
        db => db.parse().map_err(|_| format!("the database must be a number, not {db:?}"))?,
    };
    Ok(SentinelUrl { set: SentinelSet { sentinels, master }, db, userinfo })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_url_forms_name_the_sentinels_the_master_and_the_database() {
        let url = |sentinels: &[&str], master: &str, db: i64, userinfo: &str| SentinelUrl {
            set: SentinelSet {
                sentinels: sentinels.iter().map(|s| (*s).to_owned()).collect(),
                master: master.to_owned(),
            },
            db,
            userinfo: userinfo.to_owned(),
        };
        assert_eq!(
            parse("redis+sentinel://u:pw@s1:26379,s2:26380/mymaster/3", None),
            Ok(url(&["s1:26379", "s2:26380"], "mymaster", 3, "u:pw@"))
        );
        assert_eq!(parse("redis+sentinel://s1:26379/mymaster", None), Ok(url(&["s1:26379"], "mymaster", 0, "")));
        assert_eq!(
            parse("sentinel://:pw@s1:26379;sentinel://:pw@s2:26380/2", Some("mymaster")),
            Ok(url(&["s1:26379", "s2:26380"], "mymaster", 2, ":pw@"))
        );
        assert!(parse("redis+sentinel://s1:26379", None).is_err_and(|e| e.contains("name the master")));
        assert!(parse("redis+sentinel:///m/0", None).is_err_and(|e| e.contains("at least one sentinel")));
        assert!(parse("redis+sentinel://s1/m/x", None).is_err_and(|e| e.contains("must be a number")));
    }
}
