//! Approving new devices, once for both backends: with a user's
//! `device_approval` on, a login made while they have another approved
//! device starts `pending`, and the user's stream is told
//! (`device_approval_requested`); one of their approved devices approves
//! it (`device_approved`) or logs it out. A pending device's token opens
//! nothing but `GET /v1/me` and logout (the server checks).

use hark_proto::{Device, DeviceId, Event};

/// `$1` the user: whether a login now starts pending: approval is on and
/// they have an approved device logged in.
pub(crate) const STARTS_PENDING: &str = "SELECT u.device_approval AND EXISTS (
        SELECT 1 FROM devices d
        WHERE d.user_id = u.id AND d.revoked_at IS NULL AND NOT d.pending)
    FROM users u WHERE u.id = $1";

/// `$1` the device, `$2` its user: approved, if it was pending and is
/// logged in.
pub(crate) const APPROVE: &str = "UPDATE devices SET pending = FALSE
    WHERE id = $1 AND user_id = $2 AND pending AND revoked_at IS NULL";

/// `$1` now, `$2` the device, `$3` its user: logged out, if it was logged
/// in; whether it was waiting for approval (no row: it was not logged in).
pub(crate) const REVOKE: &str = "UPDATE devices SET revoked_at = $1
    WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL
    RETURNING pending";

/// `$1` the user.
pub(crate) const SETTING: &str = "SELECT device_approval FROM users WHERE id = $1";

/// `$1` on or off, `$2` the user.
pub(crate) const SET: &str = "UPDATE users SET device_approval = $1 WHERE id = $2";

pub(crate) fn requested(device: &Device) -> Event {
    Event::DeviceApprovalRequested {
        device: Device {
            current: false,
            ..device.clone()
        },
    }
}

/// A waiting device was logged out before anyone approved it.
pub(crate) fn withdrawn(device_id: DeviceId) -> Event {
    Event::DeviceApprovalWithdrawn { device_id }
}

pub(crate) fn approved(device_id: DeviceId, by: DeviceId) -> Event {
    Event::DeviceApproved { device_id, by }
}
