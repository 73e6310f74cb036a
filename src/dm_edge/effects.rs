//! Applies the engine's effects to the store: nonces, inventory, operation outcomes, alerts.

use chrono::{DateTime, Utc};

use crate::dm::session::{Effect, NotDelivered, SessionOutcome};
use crate::store::{Device, StoreError, Tx};

/// What the session log keeps of a message's effects.
pub(super) struct Summary {
    pub auth_outcome: Option<String>,
    pub end_reason: Option<String>,
}

pub(super) async fn apply(
    store: &Tx,
    device: &Device,
    session_id: &str,
    effects: &[Effect],
    now: DateTime<Utc>,
) -> Result<Summary, StoreError> {
    let mut summary = Summary {
        auth_outcome: None,
        end_reason: None,
    };
    for effect in effects {
        match effect {
            Effect::StoreClientNonce(nonce) => {
                store
                    .devices()
                    .set_client_nonce(&device.id, &nonce.to_b64())
                    .await?
            }
            Effect::StoreServerNonce(nonce) => {
                store
                    .devices()
                    .set_server_nonce(&device.id, &nonce.to_b64())
                    .await?
            }
            Effect::DeviceAuthenticated { .. } => {
                summary.auth_outcome = Some("authenticated".into())
            }
            Effect::DeviceAuthFailed { status, attempts } => {
                summary.auth_outcome = Some(format!("failed_{}", status.0));
                tracing::warn!(device.id = %device.id, dm.status = status.0, attempts, "device authentication failed");
            }
            Effect::DeviceResyncChallenged { attempts } => {
                summary.auth_outcome = Some("resync_challenged".into());
                tracing::info!(device.id = %device.id, attempts, "device credential over a resynchronisation nonce; challenged with a fresh nonce");
            }
            Effect::InvalidNextNonce => {
                tracing::error!(device.id = %device.id, "device issued a NextNonce that is not base64; not adopted, our credentials keep the previous nonce");
            }
            Effect::OperationRequeued { op_id, status } => {
                // Nothing to write: the operation never left the queue in the store. It
                // goes out again in the next message of this session.
                tracing::info!(device.id = %device.id, operation.id = %op_id, dm.status = status.0, "operation refused with our credentials, not executed; sent again");
            }
            Effect::ServerAuthRejected { status } => {
                summary.auth_outcome = Some(format!("server_rejected_{}", status.0));
                tracing::warn!(device.id = %device.id, dm.status = status.0, "the device rejected our credentials");
            }
            Effect::Inventory { uri, value } => {
                store
                    .devices()
                    .record_node(&device.id, uri, value, now)
                    .await?
            }
            Effect::DeviceLimits {
                max_msg_size,
                max_obj_size,
            } => {
                store
                    .devices()
                    .set_limits(&device.id, *max_msg_size, *max_obj_size)
                    .await?
            }
            Effect::OperationStatus { op_id, status } => {
                if let Ok(id) = op_id.parse() {
                    store
                        .operations()
                        .record_status(id, status.0, session_id, now)
                        .await?;
                }
            }
            Effect::OperationResults { op_id, items } => {
                if let Ok(id) = op_id.parse() {
                    let json = serde_json::to_value(items).expect("results serialise");
                    store.operations().record_results(id, &json, now).await?;
                }
            }
            Effect::OperationNotDelivered {
                op_id,
                reason,
                retry_later,
            } => {
                if let Ok(id) = op_id.parse() {
                    store
                        .operations()
                        .record_not_delivered(id, &not_delivered_reason(reason), *retry_later, now)
                        .await?;
                }
            }
            Effect::Alert(alert) => {
                store
                    .alerts()
                    .record(&device.id, session_id, alert, now)
                    .await?;
                tracing::info!(
                    device.id = %device.id,
                    dm.alert = alert.code,
                    dm.alert_type = alert.alert_type.as_deref().unwrap_or(""),
                    dm.correlator = alert.correlator.as_deref().unwrap_or(""),
                    dm.result_code = alert.result_code,
                    "device alert recorded"
                );
            }
            Effect::SessionLog(_) => {}
            Effect::SessionEnded { outcome } => {
                summary.end_reason = Some(
                    match outcome {
                        SessionOutcome::Completed => "completed",
                        SessionOutcome::AbortedByDevice => "aborted_by_device",
                        SessionOutcome::AuthenticationFailed => "authentication_failed",
                        SessionOutcome::ServerAuthenticationRejected => "server_auth_rejected",
                    }
                    .to_owned(),
                );
            }
        }
    }
    Ok(summary)
}

fn not_delivered_reason(reason: &NotDelivered) -> String {
    match reason {
        NotDelivered::TooLargeForDevice => "object larger than the device's MaxObjSize".into(),
        NotDelivered::LargeObjectsUnsupported => "device does not support Large Objects".into(),
        NotDelivered::MessageTooSmall => "device MaxMsgSize too small for the command".into(),
        NotDelivered::LargeObjectFailed { status } => match status {
            Some(s) => format!("Large Object transfer failed with status {}", s.0),
            None => "Large Object transfer failed".into(),
        },
        NotDelivered::NoStatus => "device sent no status".into(),
        NotDelivered::SessionAborted => "session aborted".into(),
        NotDelivered::GroupInterrupted { after } => {
            format!("held back: Large Object {after} earlier in its sequence group failed")
        }
    }
}
