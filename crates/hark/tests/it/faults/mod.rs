//! Fault injection on the cluster shape (PostgreSQL + NATS, the real `hark`
//! binary): a node killed behind HAProxy, NATS stopped and restarted,
//! PostgreSQL stopped and restarted, each under load, each followed by a
//! ledger check that nothing acknowledged was lost or stored twice; and
//! end-to-end keys in flight through a node that is killed.

mod clients;
mod cluster;
mod ledger;
mod load;
mod services;

mod e2e_keys;
mod mixed_node_loss;
mod nats_outage;
mod node_loss;
mod postgres_outage;
