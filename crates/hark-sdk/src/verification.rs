//! Knowing whose keys these are: a user's devices with their fingerprints
//! and whether this device has verified them, and verifying a device,
//! either interactively by comparing seven emoji (or three four-digit
//! numbers) on both screens, the library's SAS (`m.sas.v1`) over to-device
//! messages, or by marking it verified after comparing its fingerprint by
//! another channel.
//!
//! Verification is per device and kept in this device's crypto store (the
//! library's local trust): Hark serves no cross-signing keys yet.
//!
//! An interactive verification is driven by calling [`Crypto::sync`] (on
//! every [`crate::ClientEvent::ToDevice`], or every half second) and then
//! [`Crypto::advance`], which takes the steps that need no person (the
//! side that asked starts the comparison once the other accepts; the other
//! side accepts it) and says where the verification stands.

use crate::crypto::{crypto, mx_user, Crypto};
use crate::Result;
use hark_proto::{parse_key_user_id, DeviceId, UserId};
use matrix_sdk_common::ruma::events::key::verification::cancel::CancelCode;
use matrix_sdk_common::ruma::{OwnedDeviceId, OwnedUserId};
use matrix_sdk_crypto::types::requests::OutgoingVerificationRequest;
use matrix_sdk_crypto::{
    LocalTrust, Sas, Verification as MxVerification, VerificationRequest, VerificationRequestState,
};

/// One of a user's devices as this device knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKeys {
    pub device: DeviceId,
    /// The device's Ed25519 key (base64): what two people compare.
    pub fingerprint: String,
    /// Verified by this device (by emoji or by fingerprint).
    pub verified: bool,
    /// This very device.
    pub own: bool,
}

/// An interactive verification with one device of another user (or another
/// of one's own devices), asked for by either side.
#[derive(Debug, Clone)]
pub struct Verification {
    request: VerificationRequest,
}

/// Where an interactive verification stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationState {
    /// Asked: the other device has not answered yet.
    Requested,
    /// Someone asked this device; accept it ([`Crypto::accept_verification`])
    /// or cancel it.
    Incoming,
    /// Keys are being exchanged.
    Exchanging,
    /// Compare these on both screens, then confirm or cancel.
    Compare {
        /// Seven (symbol, name) pairs, e.g. ("🐶", "Dog").
        emoji: Vec<(String, String)>,
        /// The same in three four-digit numbers.
        decimals: (u16, u16, u16),
    },
    /// This side confirmed; the other has not yet.
    Confirmed,
    /// Both confirmed: the other device is verified on this one.
    Done,
    /// Cancelled by either side, with why (a mismatch, a timeout…).
    Cancelled(String),
}

impl Verification {
    /// The user on the other side.
    pub fn other_user(&self) -> Option<UserId> {
        parse_key_user_id(self.request.other_user().as_str())
    }

    /// The device on the other side, once known.
    pub fn other_device(&self) -> Option<DeviceId> {
        self.request
            .other_device_id()
            .and_then(|d| d.as_str().parse().ok().map(DeviceId))
    }

    /// Whether this device asked.
    pub fn we_started(&self) -> bool {
        self.request.we_started()
    }

    fn sas(&self) -> Option<Sas> {
        match self.request.state() {
            VerificationRequestState::Transitioned {
                verification: MxVerification::SasV1(sas),
                ..
            } => Some(*sas),
            _ => None,
        }
    }
}

impl Crypto {
    /// `user`'s devices with their fingerprints, fetched from the server
    /// first (devices with keys only: a device that never opened its crypto
    /// state is not listed).
    pub async fn devices(&self, user: UserId) -> Result<Vec<DeviceKeys>> {
        let id = mx_user(user)?;
        self.refresh_keys(&id).await?;
        let own = self.machine.device_id().to_owned();
        let own_user = self.machine.user_id() == id;
        let devices = self
            .machine
            .get_user_devices(&id, None)
            .await
            .map_err(crypto)?;
        let mut out: Vec<DeviceKeys> = devices
            .devices()
            .filter_map(|d| {
                Some(DeviceKeys {
                    device: DeviceId(d.device_id().as_str().parse().ok()?),
                    fingerprint: d.ed25519_key()?.to_base64(),
                    verified: d.is_verified(),
                    own: own_user && d.device_id() == own,
                })
            })
            .collect();
        out.sort_by_key(|d| d.device.0);
        Ok(out)
    }

    /// The devices of `users` this device has not verified although it has
    /// verified another device of the same user: a new login, or someone
    /// else's keys, to warn about. Read from what this device already
    /// fetched (after [`Crypto::encrypt`], the chat's members as they are).
    pub async fn unverified_new_devices(
        &self,
        users: &[UserId],
    ) -> Result<Vec<(UserId, DeviceId)>> {
        let mut found = Vec::new();
        for &user in users {
            let id = mx_user(user)?;
            if self.machine.user_id() == id {
                continue;
            }
            let devices = self
                .machine
                .get_user_devices(&id, None)
                .await
                .map_err(crypto)?;
            let all: Vec<_> = devices.devices().collect();
            if !all.iter().any(|d| d.is_verified()) {
                continue;
            }
            for d in all.iter().filter(|d| !d.is_verified()) {
                if let Ok(n) = d.device_id().as_str().parse() {
                    found.push((user, DeviceId(n)));
                }
            }
        }
        Ok(found)
    }

    /// Marks `user`'s `device` verified after its fingerprint was compared by
    /// another channel: refused unless `fingerprint` (spaces ignored) is the
    /// device's own.
    pub async fn verify_by_fingerprint(
        &self,
        user: UserId,
        device: DeviceId,
        fingerprint: &str,
    ) -> Result<()> {
        let found = self.fetched_device(user, device).await?;
        let theirs = found
            .ed25519_key()
            .ok_or_else(|| crypto("the device has no signing key"))?
            .to_base64();
        let given: String = fingerprint.chars().filter(|c| !c.is_whitespace()).collect();
        if given != theirs {
            return Err(crypto(
                "that fingerprint is not this device's: it stays unverified",
            ));
        }
        found
            .set_local_trust(LocalTrust::Verified)
            .await
            .map_err(crypto)
    }

    /// Asks `user`'s `device` to verify interactively.
    pub async fn request_verification(
        &self,
        user: UserId,
        device: DeviceId,
    ) -> Result<Verification> {
        let found = self.fetched_device(user, device).await?;
        let (request, outgoing) = found.request_verification();
        self.send_verification(outgoing).await?;
        Ok(Verification { request })
    }

    /// The verifications other devices asked of this one that are still
    /// open, as of the last [`Crypto::sync`].
    pub async fn incoming_verifications(&self) -> Vec<Verification> {
        let askers: Vec<OwnedUserId> = self.verification_askers.lock().await.clone();
        askers
            .iter()
            .flat_map(|u| self.machine.get_verification_requests(u))
            .filter(|r| !r.we_started() && !r.is_done() && !r.is_cancelled())
            .map(|request| Verification { request })
            .collect()
    }

    /// Accepts a verification another device asked for.
    pub async fn accept_verification(&self, v: &Verification) -> Result<()> {
        if let Some(outgoing) = v.request.accept() {
            self.send_verification(outgoing).await?;
        }
        Ok(())
    }

    /// Takes the steps that need no person and says where `v` stands.
    pub async fn advance(&self, v: &Verification) -> Result<VerificationState> {
        if let Some(info) = v.request.cancel_info() {
            return Ok(VerificationState::Cancelled(info.reason().to_owned()));
        }
        if v.request.is_done() {
            return Ok(VerificationState::Done);
        }
        match v.request.state() {
            VerificationRequestState::Created { .. } => return Ok(VerificationState::Requested),
            VerificationRequestState::Requested { .. } => return Ok(VerificationState::Incoming),
            VerificationRequestState::Ready { .. } => {
                if v.request.we_started() {
                    if let Some((_, outgoing)) = v.request.start_sas().await.map_err(crypto)? {
                        self.send_verification(outgoing).await?;
                    }
                }
                return Ok(VerificationState::Exchanging);
            }
            VerificationRequestState::Done => return Ok(VerificationState::Done),
            VerificationRequestState::Cancelled(info) => {
                return Ok(VerificationState::Cancelled(info.reason().to_owned()))
            }
            VerificationRequestState::Transitioned { .. } => {}
        }
        let Some(sas) = v.sas() else {
            return Err(crypto("only emoji verification is offered"));
        };
        if let Some(info) = sas.cancel_info() {
            return Ok(VerificationState::Cancelled(info.reason().to_owned()));
        }
        if sas.is_done() {
            return Ok(VerificationState::Done);
        }
        if !sas.we_started() && !sas.has_been_accepted() {
            if let Some(outgoing) = sas.accept() {
                self.send_verification(outgoing).await?;
            }
        }
        // What the machine queued itself (our key once theirs came).
        self.sync().await?;
        if sas.have_we_confirmed() {
            return Ok(VerificationState::Confirmed);
        }
        match (sas.emoji(), sas.decimals()) {
            (Some(emoji), Some(decimals)) if sas.can_be_presented() => {
                Ok(VerificationState::Compare {
                    emoji: emoji
                        .iter()
                        .map(|e| (e.symbol.to_owned(), e.description.to_owned()))
                        .collect(),
                    decimals,
                })
            }
            _ => Ok(VerificationState::Exchanging),
        }
    }

    /// Says the emoji match: the other device is verified once it says so
    /// too.
    pub async fn confirm_verification(&self, v: &Verification) -> Result<()> {
        let sas = v
            .sas()
            .ok_or_else(|| crypto("there is nothing to compare yet"))?;
        // A signature upload only comes with cross-signing, which Hark does
        // not serve: verification stays this device's own record.
        let (outgoing, _signatures) = sas.confirm().await.map_err(crypto)?;
        for request in outgoing {
            self.send_verification(request).await?;
        }
        Ok(())
    }

    /// Cancels `v`; `mismatch` says the emoji differed (the other side is
    /// told so).
    pub async fn cancel_verification(&self, v: &Verification, mismatch: bool) -> Result<()> {
        let outgoing = match (v.sas(), mismatch) {
            (Some(sas), true) => sas.cancel_with_code(CancelCode::MismatchedSas),
            (Some(sas), false) => sas.cancel(),
            (None, _) => v.request.cancel(),
        };
        if let Some(outgoing) = outgoing {
            self.send_verification(outgoing).await?;
        }
        Ok(())
    }

    async fn send_verification(&self, outgoing: OutgoingVerificationRequest) -> Result<()> {
        match outgoing {
            OutgoingVerificationRequest::ToDevice(r) => self.to_device(&r.txn_id, &r).await,
            OutgoingVerificationRequest::InRoom(_) => {
                Err(crypto("verification inside a chat is not offered"))
            }
        }
    }

    /// `user`'s `device` as the server has it now.
    async fn fetched_device(
        &self,
        user: UserId,
        device: DeviceId,
    ) -> Result<matrix_sdk_crypto::Device> {
        let id = mx_user(user)?;
        self.refresh_keys(&id).await?;
        self.machine
            .get_device(&id, &device_id(device), None)
            .await
            .map_err(crypto)?
            .ok_or_else(|| crypto(format!("device {} has no keys on the server", device.0)))
    }

    /// Fetches `user`'s device keys from the server now.
    async fn refresh_keys(&self, user: &OwnedUserId) -> Result<()> {
        self.machine
            .update_tracked_users([user.as_ref()])
            .await
            .map_err(crypto)?;
        // A user tracked already is marked as changed, so asked again.
        self.mark_changed(vec![user.clone()]).await
    }
}

fn device_id(device: DeviceId) -> OwnedDeviceId {
    device.0.to_string().into()
}
