//! The benchmark scenarios.

pub mod catchup;
pub mod cluster;
pub mod connections;
pub mod direct;
pub mod e2e;
pub mod group;
pub mod http_sink;
pub mod integrations;
pub mod media;
pub mod presence;
pub mod push;
pub mod search;
pub mod signalr;
pub mod traffic;

/// CPU seconds used by a set of processes (servers, this process).
pub(crate) fn cpu_of(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| crate::servers::cpu_seconds(p)).sum()
}
