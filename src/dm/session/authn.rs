//! Authentication inside a session: checking the device (Cred or `x-syncml-hmac`), issuing
//! challenges and nonces, and building our own credentials (brief 2.3-2.6).

use crate::dm::auth::{
    AuthType, CredentialHash, HmacHeader, Nonce, NonceSource, basic_credential, basic_secret_for,
    md5_credential, verify_hmac, verify_md5_credential,
};
use crate::dm::message::{Chal, Cred, Format, Meta, StatusCode, SyncML};

use super::Inbound;
use super::device::{ClientCredentials, DeviceRecord};
use super::effect::Effect;
use super::state::SessionState;

/// The verdict on the device's credentials for one message.
pub(super) enum Verdict {
    /// Go on. `status` is the SyncHdr status (212 session-wide, 200 per message).
    Accepted {
        status: StatusCode,
        chal: Option<Chal>,
    },
    /// Answer only with statuses carrying `status` (401/407) and this challenge.
    Challenge { status: StatusCode, chal: Chal },
    /// Retries exhausted: statuses + Final, no challenge, session over.
    GiveUp { status: StatusCode },
}

enum Check {
    Ok,
    Missing,
    Invalid,
    /// The credential verifies only against a resynchronisation default (brief 2.5). Every
    /// device knows those nonces, so such a credential is the same in every session and a
    /// captured copy would open any later one: it never authenticates by itself. It is
    /// answered with a challenge carrying a fresh nonce, the re-seeding the spec describes,
    /// and only a credential over that nonce authenticates.
    Resync,
}

fn chal(auth: AuthType, nonce: Option<&Nonce>) -> Chal {
    Chal {
        meta: Meta {
            format: Some(Format::B64),
            type_: Some(auth.type_uri().to_owned()),
            next_nonce: nonce.map(Nonce::to_b64),
            ..Meta::default()
        },
    }
}

/// Issues a fresh nonce for the device, remembers it and asks the edge to persist it.
fn fresh_client_nonce(
    st: &mut SessionState,
    rng: &mut impl NonceSource,
    fx: &mut Vec<Effect>,
) -> Nonce {
    let n = Nonce::generate(rng);
    st.client_nonce = Some(n.clone());
    fx.push(Effect::StoreClientNonce(n.clone()));
    n
}

/// Which nonce a digest credential verifies against: the one we issued (stored, or issued
/// in this session) authenticates; a resynchronisation default (4 zero bytes, libdmclient's
/// ASCII `0x00000000`) only earns a challenge. A provisioned nonce that happens to equal a
/// default counts as issued: it is replaced by a fresh one at the first 212, like any other.
fn by_nonce(st: &SessionState, verifies: impl Fn(&Nonce) -> bool) -> Check {
    if st.client_nonce.as_ref().is_some_and(&verifies) {
        Check::Ok
    } else if Nonce::resync_defaults().iter().any(verifies) {
        Check::Resync
    } else {
        Check::Invalid
    }
}

fn check(
    msg: &SyncML,
    body: &[u8],
    hmac: Option<&str>,
    c: &ClientCredentials,
    st: &SessionState,
) -> Check {
    let hash = c.secret.hash(&c.name);
    match c.auth_type {
        AuthType::Hmac => {
            let Some(header) = hmac else {
                return Check::Missing;
            };
            // Present but unreadable is a wrong credential, not a missing one.
            let Some(h) = HmacHeader::parse(header) else {
                return Check::Invalid;
            };
            if h.username != c.name {
                return Check::Invalid;
            }
            by_nonce(st, |n| verify_hmac(&hash, &n.0, body, &h.mac))
        }
        AuthType::Basic | AuthType::Md5 => {
            let Some(cred) = &msg.hdr.cred else {
                return Check::Missing;
            };
            // The Cred Type defaults to basic when Meta is absent (SyncML default).
            let ty = cred
                .meta
                .as_ref()
                .and_then(|m| m.type_.as_deref())
                .map_or(Some(AuthType::Basic), AuthType::from_type_uri);
            // The challenged side must answer with the requested type (brief 2.5.5).
            if ty != Some(c.auth_type) {
                return Check::Invalid;
            }
            if let Some(n) = &msg.hdr.source.loc_name
                && *n != c.name
            {
                return Check::Invalid;
            }
            match c.auth_type {
                // Basic can be checked against the stored hash: hash what was presented.
                // (No nonce: basic is replayable by design, which is why md5 exists.)
                AuthType::Basic => {
                    let ok = basic_secret_for(&cred.data, &c.name)
                        .is_some_and(|s| CredentialHash::compute(&c.name, &s) == hash);
                    if ok { Check::Ok } else { Check::Invalid }
                }
                _ => by_nonce(st, |n| verify_md5_credential(&hash, &n.0, &cred.data)),
            }
        }
    }
}

/// Decides on the device's credentials for this message.
pub(super) fn authenticate_device(
    st: &mut SessionState,
    inp: &Inbound<'_>,
    rng: &mut impl NonceSource,
    fx: &mut Vec<Effect>,
) -> Verdict {
    let (msg, body, hmac, device) = (inp.message, inp.body, inp.hmac_header, inp.device);
    let max_attempts = inp.server.max_auth_attempts;
    let Some(c) = &device.client else {
        if !st.device_authenticated {
            st.device_authenticated = true;
            fx.push(Effect::DeviceAuthenticated { auth_type: None });
            return Verdict::Accepted {
                status: StatusCode::AUTHENTICATION_ACCEPTED,
                chal: None,
            };
        }
        return Verdict::Accepted {
            status: StatusCode::OK,
            chal: None,
        };
    };
    // After 212 the device stops sending credentials; HMAC instead is checked every message.
    if st.device_authenticated && c.auth_type != AuthType::Hmac {
        return Verdict::Accepted {
            status: StatusCode::OK,
            chal: None,
        };
    }
    match check(msg, body, hmac, c, st) {
        Check::Ok => {
            let first = !st.device_authenticated;
            st.device_authenticated = true;
            st.auth_type = Some(c.auth_type);
            if first {
                fx.push(Effect::DeviceAuthenticated {
                    auth_type: Some(c.auth_type),
                });
            }
            match c.auth_type {
                // 212 + the nonce for the next session (md5) — brief 2.5.3.
                AuthType::Md5 => {
                    let n = fresh_client_nonce(st, rng, fx);
                    Verdict::Accepted {
                        status: StatusCode::AUTHENTICATION_ACCEPTED,
                        chal: Some(chal(AuthType::Md5, Some(&n))),
                    }
                }
                AuthType::Basic => Verdict::Accepted {
                    status: StatusCode::AUTHENTICATION_ACCEPTED,
                    chal: None,
                },
                // HMAC: 200, never 212, and a new nonce with every message (brief 2.4).
                AuthType::Hmac => {
                    let n = fresh_client_nonce(st, rng, fx);
                    Verdict::Accepted {
                        status: StatusCode::OK,
                        chal: Some(chal(AuthType::Hmac, Some(&n))),
                    }
                }
            }
        }
        bad => {
            let status = match bad {
                Check::Missing => StatusCode::MISSING_CREDENTIALS,
                _ => StatusCode::INVALID_CREDENTIALS,
            };
            st.device_authenticated = false;
            // A resync challenge counts as an attempt too: it bounds a replayer's loop, and
            // an honest device needs one attempt for it and authenticates with the next.
            st.auth_attempts = st.auth_attempts.saturating_add(1);
            fx.push(match bad {
                Check::Resync => Effect::DeviceResyncChallenged {
                    attempts: st.auth_attempts,
                },
                _ => Effect::DeviceAuthFailed {
                    status,
                    attempts: st.auth_attempts,
                },
            });
            if st.auth_attempts > max_attempts {
                return Verdict::GiveUp { status };
            }
            let nonce = c
                .auth_type
                .uses_nonce()
                .then(|| fresh_client_nonce(st, rng, fx));
            Verdict::Challenge {
                status,
                chal: chal(c.auth_type, nonce.as_ref()),
            }
        }
    }
}

/// Our `Cred` for the SyncHdr, sent until the device answers 212 (libdmclient answers every
/// command with 0 when the first server message lacks it, brief 2.6). HMAC goes in a header.
pub(super) fn server_cred(st: &SessionState, device: &DeviceRecord) -> Option<Cred> {
    let s = device.server.as_ref()?;
    if st.server_authenticated {
        return None;
    }
    let data = match s.auth_type {
        AuthType::Basic => basic_credential(&s.name, s.secret.cleartext()?),
        AuthType::Md5 => md5_credential(&s.secret.hash(&s.name), &server_nonce(st).0),
        AuthType::Hmac => return None,
    };
    Some(Cred {
        meta: Some(Meta {
            format: Some(Format::B64),
            type_: Some(s.auth_type.type_uri().to_owned()),
            ..Meta::default()
        }),
        data,
    })
}

/// The nonce for our credentials; 4 zero bytes when the device never gave us one (the
/// resynchronisation default Sprint falls back to, brief 2.4/2.5).
fn server_nonce(st: &SessionState) -> Nonce {
    st.server_nonce.clone().unwrap_or_else(|| Nonce(vec![0; 4]))
}

/// The `x-syncml-hmac` value for our reply body, when the server authenticates with HMAC.
pub(super) fn server_hmac(st: &SessionState, device: &DeviceRecord, body: &[u8]) -> Option<String> {
    let s = device.server.as_ref()?;
    if s.auth_type != AuthType::Hmac {
        return None;
    }
    let mac = crate::dm::auth::hmac_mac(&s.secret.hash(&s.name), &server_nonce(st).0, body);
    Some(
        HmacHeader {
            algorithm: Some("MD5".into()),
            username: s.name.clone(),
            mac,
        }
        .format(),
    )
}
