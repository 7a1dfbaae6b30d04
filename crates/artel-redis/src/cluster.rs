//! `redis+cluster://[USER:PASSWORD@]H1:P1,H2:P2`: the native layout sharded over a Redis
//! Cluster. The nodes named are seeds: the rest of the cluster is discovered from the
//! first that answers, and followed through resharding and failovers by redis-rs.
//!
//! What a failover can lose: replication is asynchronous, so writes a master
//! acknowledged but had not yet sent to its replica are gone when the replica is
//! promoted. With `?replicas=1` a publish returns only once a replica has it (`WAIT`),
//! and so does a finished task's result before its ack (they live on different shards,
//! so a result lost after the ack would leave the task done without one); a result the
//! replicas do not confirm fails the store, and the task runs again.

use std::time::Duration;

use artel_core::{BrokerError, BrokerErrorKind, BrokerResult};
use redis::cluster::ClusterClientBuilder;

use crate::conn::{Conn, Healing, PATIENCE, Servers};
use crate::toolkit::redis_error;

/// The URL scheme.
pub const SCHEME: &str = "redis+cluster://";

/// A cluster URL as the `redis://` URLs of its seed nodes.
pub fn parse(url: &str) -> Result<Vec<String>, String> {
    let rest = url.strip_prefix(SCHEME).ok_or_else(|| format!("a cluster URL starts with {SCHEME}"))?;
    let rest = rest.split_once('?').map_or(rest, |(address, _)| address);
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    if !matches!(db, "" | "0") {
        return Err(format!("a Redis Cluster has only database 0, not /{db}: drop it from the URL"));
    }
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), authority),
    };
    let nodes: Vec<String> =
        hosts.split(',').filter(|h| !h.is_empty()).map(|host| format!("redis://{credentials}{host}")).collect();
    if nodes.is_empty() {
        return Err(format!("name at least one node of the cluster: {SCHEME}HOST:PORT,HOST:PORT"));
    }
    Ok(nodes)
}

/// Connects to the cluster `url` names: the routed connection, and where others open.
pub(crate) async fn open(url: &str, tls: &artel_core::TlsFiles) -> BrokerResult<(Conn, Servers)> {
    let shown = artel_core::redact_url(url);
    if !tls.is_empty() {
        return Err(BrokerError::new(
            BrokerErrorKind::Other,
            format!("TLS to a Redis Cluster is not supported yet ({shown}): drop the certificate files"),
        ));
    }
    let seeds =
        parse(url).map_err(|problem| BrokerError::new(BrokerErrorKind::Other, format!("{shown}: {problem}")))?;
    let failed = |e: redis::RedisError| {
        let hint = match e.is_io_error() || e.is_connection_refusal() || e.is_timeout() {
            true => " (are the nodes running, in cluster mode, at those addresses?)",
            false => "",
        };
        redis_error(&format!("connecting to the Redis Cluster at {shown}{hint}"), e)
    };
    let connecting = Healing::open(client(&seeds, PATIENCE).map_err(failed)?);
    let conn = match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(opened) => opened.map_err(failed)?,
        Err(_) => {
            return Err(BrokerError::new(
                BrokerErrorKind::Timeout,
                format!("connecting to the Redis Cluster at {shown} took over 10 s (are its nodes reachable?)"),
            ));
        }
    };
    let seed = redis::Client::open(seeds[0].as_str()).map_err(failed)?;
    let nodes = crate::conn::nodes(&conn, &seed).await.map_err(failed)?;
    tracing::info!(url = %shown, nodes = nodes.len(), "connected to the Redis Cluster");
    Ok((Conn::Cluster(conn), Servers::cluster(seeds, nodes)))
}

/// A client of the cluster `seeds` lead to, whose requests fail after `patience`
/// (redis-rs applies a response timeout to a whole request only when the client is
/// built with it, not when a connection is opened with one).
pub(crate) fn client(seeds: &[String], patience: Duration) -> redis::RedisResult<redis::cluster::ClusterClient> {
    ClusterClientBuilder::new(seeds.to_vec())
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(patience)
        .retries(3)
        .build()
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_cluster_url_names_its_seed_nodes_with_their_credentials() {
        assert_eq!(
            parse("redis+cluster://u:pw@h1:7000,h2:7001/0?prefix=x"),
            Ok(vec!["redis://u:pw@h1:7000".to_owned(), "redis://u:pw@h2:7001".to_owned()])
        );
        assert_eq!(parse("redis+cluster://h1:7000"), Ok(vec!["redis://h1:7000".to_owned()]));
    }

    #[test]
    fn a_cluster_url_without_nodes_or_with_a_database_is_refused() {
        assert!(parse("redis+cluster://").is_err_and(|e| e.contains("at least one node")));
        assert!(parse("redis+cluster://h1:7000/3").is_err_and(|e| e.contains("only database 0")));
        assert!(parse("redis://h1:7000").is_err());
    }
}
