//! `StatusCode` and `AlertCode`: the numeric codes carried in `Status/Data` and `Alert/Data`.

use serde::{Deserialize, Serialize};

/// A SyncML status code (`Status/Data`). Any u16 is representable: devices send vendor codes,
/// and libdmclient even sends `0` for every command when server authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatusCode(pub u16);

impl StatusCode {
    pub const IN_PROGRESS: Self = Self(101);
    pub const OK: Self = Self(200);
    pub const ACCEPTED: Self = Self(202);
    pub const AUTHENTICATION_ACCEPTED: Self = Self(212);
    pub const CHUNKED_ITEM_ACCEPTED: Self = Self(213);
    pub const OPERATION_CANCELLED: Self = Self(214);
    pub const NOT_EXECUTED: Self = Self(215);
    pub const ATOMIC_ROLLBACK_OK: Self = Self(216);
    pub const NOT_MODIFIED: Self = Self(304);
    pub const BAD_REQUEST: Self = Self(400);
    pub const INVALID_CREDENTIALS: Self = Self(401);
    pub const FORBIDDEN: Self = Self(403);
    pub const NOT_FOUND: Self = Self(404);
    pub const COMMAND_NOT_ALLOWED: Self = Self(405);
    pub const OPTIONAL_FEATURE_NOT_SUPPORTED: Self = Self(406);
    pub const MISSING_CREDENTIALS: Self = Self(407);
    pub const REQUEST_TIMEOUT: Self = Self(408);
    pub const INCOMPLETE_COMMAND: Self = Self(412);
    pub const REQUEST_ENTITY_TOO_LARGE: Self = Self(413);
    pub const URI_TOO_LONG: Self = Self(414);
    pub const UNSUPPORTED_MEDIA_TYPE: Self = Self(415);
    pub const ALREADY_EXISTS: Self = Self(418);
    pub const DEVICE_FULL: Self = Self(420);
    pub const SIZE_MISMATCH: Self = Self(424);
    pub const PERMISSION_DENIED: Self = Self(425);
    pub const COMMAND_FAILED: Self = Self(500);
    pub const COMMAND_NOT_IMPLEMENTED: Self = Self(501);
    pub const SERVICE_UNAVAILABLE: Self = Self(503);
    pub const DTD_VERSION_NOT_SUPPORTED: Self = Self(505);
    pub const PROCESSING_ERROR: Self = Self(506);
    pub const ATOMIC_FAILED: Self = Self(507);
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: Self = Self(513);

    /// 2xx: the command (or the chunk, for 213) succeeded.
    pub fn is_success(self) -> bool {
        (200..300).contains(&self.0)
    }

    /// Lenient parse of `Status/Data`: surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok().map(Self)
    }
}

impl std::fmt::Display for StatusCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An alert code (`Alert/Data`), brief section 1.9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlertCode(pub u16);

impl AlertCode {
    pub const DISPLAY: Self = Self(1100);
    pub const CONFIRM_OR_REJECT: Self = Self(1101);
    pub const TEXT_INPUT: Self = Self(1102);
    pub const SINGLE_CHOICE: Self = Self(1103);
    pub const MULTIPLE_CHOICE: Self = Self(1104);
    pub const SERVER_INITIATED_MGMT: Self = Self(1200);
    pub const CLIENT_INITIATED_MGMT: Self = Self(1201);
    pub const NEXT_MESSAGE: Self = Self(1222);
    pub const SESSION_ABORT: Self = Self(1223);
    pub const CLIENT_EVENT: Self = Self(1224);
    pub const NO_END_OF_DATA: Self = Self(1225);
    pub const GENERIC_ALERT: Self = Self(1226);

    pub fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok().map(Self)
    }
}

impl std::fmt::Display for AlertCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
