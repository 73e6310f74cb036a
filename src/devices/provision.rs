//! A provisioning request (`POST /api/v1/devices`, or one line of an import) checked and
//! turned into what the store writes: credentials hashed, labels and declared inventory
//! checked. Every refusal is a message that names the field.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::labels::{check_groups, check_tags, check_timezone};
use crate::dm::auth::{AuthType, CredentialHash, Nonce};
use crate::dm_edge;
use crate::selector::check_value;
use crate::store::{DeclaredInventory, NewDevice, parse_auth_type};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// `basic`, `md5` or `hmac`.
    #[serde(rename = "type")]
    pub auth_type: String,
    /// The AAuthName (client) or ServerID (server).
    pub name: String,
    /// Stored only as `B64(MD5(name:secret))`.
    pub secret: String,
    /// The initial nonce of this credential as the device's bootstrap set it, base64; `""`
    /// is the empty nonce (libdmclient's accounts start with it). Omit it when unknown: the
    /// device's first credential is then challenged (client), or our first credentials use
    /// the resynchronisation default until the device re-seeds it (server). md5 and hmac only.
    pub nonce: Option<String>,
}

/// What the factory recorded of the device; its own DevInfo/DevDetail overwrite each value at
/// its sessions.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactoryInventory {
    /// `./DevInfo/Man`.
    pub manufacturer: Option<String>,
    /// `./DevInfo/Mod`.
    pub model: Option<String>,
    /// `./DevDetail/FwV`.
    pub fw_version: Option<String>,
    /// `./DevDetail/HwV`.
    pub hw_version: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDevice {
    /// The OMA DM DevId, e.g. `IMEI:490154203237518`.
    pub dev_id: String,
    pub msisdn: Option<String>,
    /// How the device authenticates to us.
    pub client: Credentials,
    /// How we authenticate to the device (`md5` or `hmac`), also keying Package 0.
    pub server: Credentials,
    /// Direct Package 0 push target: `http://…` or `udp://host:port`.
    pub push_url: Option<String>,
    /// The device's DM client does not follow RespURI (default false). Later messages of its
    /// sessions are then accepted without the per-session token that RespURI carries; keep it
    /// false for every client that follows RespURI, as the specification requires.
    #[serde(default)]
    pub ignores_resp_uri: bool,
    /// Key=value labels (at most 32), as `{"ring": "canary"}` or `["ring=canary"]`. Keys are 1
    /// to 64 ASCII letters, digits or `_ . : / -`; values 1 to 256 characters.
    #[serde(default, deserialize_with = "crate::selector::tags_object_or_list")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub tags: BTreeMap<String, String>,
    /// Static groups (at most 32), named like tag keys.
    #[serde(default)]
    pub groups: Vec<String>,
    /// IANA time zone name, e.g. `Europe/Paris`: the device's local time for maintenance
    /// windows.
    pub timezone: Option<String>,
    /// What the factory recorded (manufacturer, model, firmware and hardware versions).
    pub inventory: Option<FactoryInventory>,
}

fn check_text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() || value.len() > max || value.chars().any(char::is_control) {
        return Err(format!("{field} must be 1 to {max} printable characters"));
    }
    Ok(())
}

fn auth_type(field: &str, value: &str) -> Result<AuthType, String> {
    parse_auth_type(value).ok_or_else(|| format!("{field} must be basic, md5 or hmac"))
}

/// A provisioned initial nonce: base64 (empty allowed), decoded at most 64 bytes, and only for
/// schemes that use one.
fn initial_nonce(
    field: &str,
    auth: AuthType,
    value: Option<String>,
) -> Result<Option<String>, String> {
    let Some(text) = value else {
        return Ok(None);
    };
    if !auth.uses_nonce() {
        return Err(format!(
            "{field} applies to md5 and hmac only: basic has no nonce"
        ));
    }
    let too_long = text.trim().len() > 88; // 64 bytes in base64, checked before decoding
    match Nonce::from_b64(&text) {
        Ok(n) if !too_long && n.0.len() <= 64 => Ok(Some(n.to_b64())),
        Ok(_) => Err(format!("{field} must decode to at most 64 bytes")),
        Err(_) => Err(format!(
            "{field} must be standard base64 with padding (\"\" for the empty nonce)"
        )),
    }
}

fn declared(field: &str, value: Option<String>) -> Result<Option<String>, String> {
    if let Some(v) = &value {
        check_value(v).map_err(|m| format!("{field}: {m}"))?;
    }
    Ok(value)
}

impl CreateDevice {
    /// The device as the store writes it, or why not (a message naming the field).
    pub fn into_new_device(self) -> Result<NewDevice, String> {
        let b = self;
        let dev_id = b.dev_id.trim().to_owned();
        check_text("dev_id", &dev_id, 256)?;
        check_text("client.name", &b.client.name, 256)?;
        check_text("client.secret", &b.client.secret, 256)?;
        check_text("server.name", &b.server.name, 255)?;
        check_text("server.secret", &b.server.secret, 256)?;
        if !b.server.name.is_ascii() {
            return Err("server.name (the ServerID) must be ASCII".into());
        }
        let client_auth = auth_type("client.type", &b.client.auth_type)?;
        let server_auth = auth_type("server.type", &b.server.auth_type)?;
        let client_nonce = initial_nonce("client.nonce", client_auth, b.client.nonce)?;
        let server_nonce = initial_nonce("server.nonce", server_auth, b.server.nonce)?;
        if !dm_edge::server_auth_supported(server_auth) {
            return Err(
                "server.type must be md5 or hmac: basic would need the server secret stored in clear"
                    .into(),
            );
        }
        if let Some(url) = &b.push_url
            && !(url.starts_with("http://")
                || url.starts_with("https://")
                || url.starts_with("udp://"))
        {
            return Err("push_url must be http://, https:// or udp://".into());
        }
        if let Some(msisdn) = &b.msisdn {
            check_text("msisdn", msisdn, 32)?;
        }
        check_tags(&b.tags)?;
        check_groups(&b.groups)?;
        let timezone = b.timezone.as_deref().map(check_timezone).transpose()?;
        let inventory = b.inventory.unwrap_or_default();
        let inventory = DeclaredInventory {
            manufacturer: declared("inventory.manufacturer", inventory.manufacturer)?,
            model: declared("inventory.model", inventory.model)?,
            fw_version: declared("inventory.fw_version", inventory.fw_version)?,
            hw_version: declared("inventory.hw_version", inventory.hw_version)?,
        };
        Ok(NewDevice {
            dev_id,
            msisdn: b.msisdn,
            client_auth_type: client_auth,
            client_secret_hash: CredentialHash::compute(&b.client.name, &b.client.secret).0,
            client_nonce,
            client_name: b.client.name,
            server_auth_type: server_auth,
            server_secret_hash: CredentialHash::compute(&b.server.name, &b.server.secret).0,
            server_secret_sealed: None,
            server_nonce,
            server_name: b.server.name,
            push_url: b.push_url,
            ignores_resp_uri: b.ignores_resp_uri,
            inventory,
            tags: b.tags,
            groups: b.groups,
            timezone,
        })
    }
}
