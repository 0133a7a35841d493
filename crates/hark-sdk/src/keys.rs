//! End-to-end encryption's key directory and this device's inbox, as the
//! server offers them (docs/protocol.md, "End-to-end encryption"): the
//! bodies are those the Olm/Megolm libraries produce and read.

use crate::api::Api;
use crate::Result;
use hark_proto::{
    Inbox, InboxRequest, KeysClaim, KeysClaimed, KeysQuery, KeysQueryResult, KeysUpload,
    KeysUploaded, ToDeviceSend,
};
use reqwest::Method;
use std::collections::BTreeMap;

/// The most users one query, or devices one claim, may name (docs/protocol.md).
const MAX_PER_REQUEST: usize = 1_000;

/// `map` (per user) cut into maps weighing at most `limit` each, a user's
/// weight being `weight(value)`; a user heavier than `limit` goes alone.
fn chunks<V: Clone>(
    map: &BTreeMap<String, V>,
    limit: usize,
    weight: impl Fn(&V) -> usize,
) -> Vec<BTreeMap<String, V>> {
    let mut out = vec![BTreeMap::new()];
    let mut load = 0;
    for (user, value) in map {
        let w = weight(value);
        if load + w > limit && load > 0 {
            out.push(BTreeMap::new());
            load = 0;
        }
        load += w;
        if let Some(last) = out.last_mut() {
            last.insert(user.clone(), value.clone());
        }
    }
    out
}

impl Api {
    /// `POST /v1/e2e/keys/upload`: this device's identity, one-time and fallback keys.
    pub async fn upload_keys(&self, body: &KeysUpload) -> Result<KeysUploaded> {
        self.call(Method::POST, "/v1/e2e/keys/upload", Some(body), true)
            .await
    }

    /// `POST /v1/e2e/keys/query`: the device keys of users sharing a chat
    /// with this one; more users than one request may name go in several.
    pub async fn query_keys(&self, body: &KeysQuery) -> Result<KeysQueryResult> {
        let mut all = KeysQueryResult::default();
        for part in chunks(&body.device_keys, MAX_PER_REQUEST, |_| 1) {
            let request = KeysQuery {
                device_keys: part,
                timeout: body.timeout,
            };
            let answer: KeysQueryResult = self
                .call(Method::POST, "/v1/e2e/keys/query", Some(&request), true)
                .await?;
            all.device_keys.extend(answer.device_keys);
            all.failures.extend(answer.failures);
        }
        Ok(all)
    }

    /// `POST /v1/e2e/keys/claim`: one one-time (or fallback) key per device;
    /// more devices than one request may name go in several.
    pub async fn claim_keys(&self, body: &KeysClaim) -> Result<KeysClaimed> {
        let mut all = KeysClaimed::default();
        for part in chunks(&body.one_time_keys, MAX_PER_REQUEST, BTreeMap::len) {
            let request = KeysClaim {
                one_time_keys: part,
                timeout: body.timeout,
            };
            let answer: KeysClaimed = self
                .call(Method::POST, "/v1/e2e/keys/claim", Some(&request), true)
                .await?;
            for (user, devices) in answer.one_time_keys {
                all.one_time_keys.entry(user).or_default().extend(devices);
            }
            all.failures.extend(answer.failures);
        }
        Ok(all)
    }

    /// `PUT /v1/e2e/to_device/{event_type}/{txn_id}`: the same `txn_id`
    /// again is stored once, so a send can be retried.
    pub async fn send_to_device(
        &self,
        event_type: &str,
        txn_id: &str,
        body: &ToDeviceSend,
    ) -> Result<()> {
        let path = format!(
            "/v1/e2e/to_device/{}/{}",
            crate::url::segment(event_type),
            crate::url::segment(txn_id)
        );
        let _: serde_json::Value = self.call(Method::PUT, &path, Some(body), true).await?;
        Ok(())
    }

    /// `POST /v1/e2e/inbox`: removes the messages up to `ack`, answers the
    /// next ones and the key counts.
    pub async fn e2e_inbox(&self, request: &InboxRequest) -> Result<Inbox> {
        self.call(Method::POST, "/v1/e2e/inbox", Some(request), true)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::chunks;
    use std::collections::BTreeMap;

    #[test]
    fn requests_are_cut_at_the_servers_limit_and_keep_every_entry() {
        let users: BTreeMap<String, BTreeMap<String, String>> = (0..1024)
            .map(|u| {
                let devices = (0..(1 + u % 3))
                    .map(|d| (d.to_string(), "signed_curve25519".to_owned()))
                    .collect();
                (format!("@{u}:hark"), devices)
            })
            .collect();
        let total: usize = users.values().map(BTreeMap::len).sum();
        let parts = chunks(&users, 1000, BTreeMap::len);
        assert!(parts.len() >= 3, "{total} devices in {} parts", parts.len());
        assert!(parts
            .iter()
            .all(|p| p.values().map(BTreeMap::len).sum::<usize>() <= 1000));
        let mut joined = BTreeMap::new();
        for p in parts {
            joined.extend(p);
        }
        assert_eq!(joined, users);
        assert_eq!(chunks(&BTreeMap::<String, u8>::new(), 1000, |_| 1).len(), 1);
    }
}
