//! One import line as a provisioning request: an NDJSON object of the `POST /api/v1/devices`
//! shape, or a CSV record under the header row's column names.
//!
//! CSV columns: `dev_id`, `msisdn`, `client_type`, `client_name`, `client_secret`,
//! `client_nonce`, `server_type`, `server_name`, `server_secret`, `server_nonce`, `push_url`,
//! `ignores_resp_uri`, `tags` (`k=v;k2=v2`), `groups` (`a;b`), `timezone`, `manufacturer`,
//! `model`, `fw_version`, `hw_version`. An empty cell is an absent value. A record is one
//! line: a quoted field may hold commas and doubled quotes but no line break.

use std::collections::BTreeMap;

use crate::devices::provision::{CreateDevice, Credentials, FactoryInventory};

/// A line refused, with the DevId when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub dev_id: Option<String>,
    pub message: String,
}

impl Refusal {
    fn new(dev_id: Option<String>, message: impl Into<String>) -> Self {
        Refusal {
            dev_id,
            message: message.into(),
        }
    }
}

/// An NDJSON line.
pub fn json_device(line: &str) -> Result<CreateDevice, Refusal> {
    serde_json::from_str(line).map_err(|e| {
        // The DevId of a line refused for another field, for the report.
        let dev_id = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("dev_id")?.as_str().map(str::to_owned));
        // serde_json ends its message with the position as if the line were the document.
        let text = e.to_string();
        let reason = text
            .rsplit_once(" at line ")
            .map_or(text.as_str(), |(reason, _)| reason);
        Refusal::new(
            dev_id,
            format!("invalid JSON: {reason} (column {})", e.column()),
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    DevId,
    Msisdn,
    ClientType,
    ClientName,
    ClientSecret,
    ClientNonce,
    ServerType,
    ServerName,
    ServerSecret,
    ServerNonce,
    PushUrl,
    IgnoresRespUri,
    Tags,
    Groups,
    Timezone,
    Manufacturer,
    Model,
    FwVersion,
    HwVersion,
}

const COLUMNS: &[(&str, Column)] = &[
    ("dev_id", Column::DevId),
    ("msisdn", Column::Msisdn),
    ("client_type", Column::ClientType),
    ("client_name", Column::ClientName),
    ("client_secret", Column::ClientSecret),
    ("client_nonce", Column::ClientNonce),
    ("server_type", Column::ServerType),
    ("server_name", Column::ServerName),
    ("server_secret", Column::ServerSecret),
    ("server_nonce", Column::ServerNonce),
    ("push_url", Column::PushUrl),
    ("ignores_resp_uri", Column::IgnoresRespUri),
    ("tags", Column::Tags),
    ("groups", Column::Groups),
    ("timezone", Column::Timezone),
    ("manufacturer", Column::Manufacturer),
    ("model", Column::Model),
    ("fw_version", Column::FwVersion),
    ("hw_version", Column::HwVersion),
];

const REQUIRED: &[Column] = &[
    Column::DevId,
    Column::ClientType,
    Column::ClientName,
    Column::ClientSecret,
    Column::ServerType,
    Column::ServerName,
    Column::ServerSecret,
];

fn column_name(column: Column) -> &'static str {
    COLUMNS
        .iter()
        .find(|(_, c)| *c == column)
        .map_or("?", |(name, _)| name)
}

/// One CSV line as fields, by the `csv` crate.
fn csv_fields(line: &str) -> Result<csv::StringRecord, String> {
    // The reader would run an unterminated quote on to the end of the input; a record is
    // one line here, so an odd number of quotes is an error of this line.
    if line.bytes().filter(|&b| b == b'"').count() % 2 == 1 {
        return Err("unterminated quoted field (a record must fit on one line)".into());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(line.len().max(64))
        .from_reader(line.as_bytes());
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(record),
        Ok(false) => Err("empty record".into()),
        Err(e) => Err(format!("invalid CSV: {e}")),
    }
}

/// The header row: which column is which.
#[derive(Debug, Clone)]
pub struct CsvHeader {
    columns: Vec<Column>,
}

impl CsvHeader {
    /// Every name known, none twice, the required ones present.
    pub fn parse(line: &str) -> Result<CsvHeader, String> {
        let fields = csv_fields(line).map_err(|e| format!("CSV header: {e}"))?;
        let mut columns = Vec::with_capacity(fields.len());
        for name in fields.iter() {
            let name = name.trim();
            let Some(&(_, column)) = COLUMNS.iter().find(|(n, _)| *n == name) else {
                let known: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "CSV header: unknown column {name:?} (known: {})",
                    known.join(", ")
                ));
            };
            if columns.contains(&column) {
                return Err(format!("CSV header: column {name:?} given twice"));
            }
            columns.push(column);
        }
        if let Some(missing) = REQUIRED.iter().find(|c| !columns.contains(c)) {
            return Err(format!(
                "CSV header: required column {:?} missing",
                column_name(*missing)
            ));
        }
        Ok(CsvHeader { columns })
    }

    /// A record under this header.
    pub fn device(&self, line: &str) -> Result<CreateDevice, Refusal> {
        let fields = csv_fields(line).map_err(|m| Refusal::new(None, m))?;
        let cell = |column: Column| -> Option<String> {
            let i = self.columns.iter().position(|c| *c == column)?;
            fields.get(i).filter(|v| !v.is_empty()).map(str::to_owned)
        };
        let dev_id = cell(Column::DevId);
        let refuse = |m: String| Refusal::new(dev_id.clone(), m);
        if fields.len() != self.columns.len() {
            return Err(refuse(format!(
                "{} fields, the header has {}",
                fields.len(),
                self.columns.len()
            )));
        }
        let required = |column: Column| {
            cell(column).ok_or_else(|| refuse(format!("{} is empty", column_name(column))))
        };
        let ignores_resp_uri = match cell(Column::IgnoresRespUri).as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(refuse(format!(
                    "ignores_resp_uri must be true or false, not {other:?}"
                )));
            }
        };
        let mut tags = BTreeMap::new();
        for pair in cell(Column::Tags).iter().flat_map(|t| t.split(';')) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(refuse(format!("tags: {pair:?} is not key=value")));
            };
            if tags.insert(key.to_owned(), value.to_owned()).is_some() {
                return Err(refuse(format!("tags: key {key:?} given twice")));
            }
        }
        let groups = cell(Column::Groups)
            .map(|g| g.split(';').map(str::to_owned).collect())
            .unwrap_or_default();
        let inventory = FactoryInventory {
            manufacturer: cell(Column::Manufacturer),
            model: cell(Column::Model),
            fw_version: cell(Column::FwVersion),
            hw_version: cell(Column::HwVersion),
        };
        let declared = inventory.manufacturer.is_some()
            || inventory.model.is_some()
            || inventory.fw_version.is_some()
            || inventory.hw_version.is_some();
        Ok(CreateDevice {
            dev_id: required(Column::DevId)?,
            msisdn: cell(Column::Msisdn),
            client: Credentials {
                auth_type: required(Column::ClientType)?,
                name: required(Column::ClientName)?,
                secret: required(Column::ClientSecret)?,
                nonce: cell(Column::ClientNonce),
            },
            server: Credentials {
                auth_type: required(Column::ServerType)?,
                name: required(Column::ServerName)?,
                secret: required(Column::ServerSecret)?,
                nonce: cell(Column::ServerNonce),
            },
            push_url: cell(Column::PushUrl),
            ignores_resp_uri,
            tags,
            groups,
            timezone: cell(Column::Timezone),
            inventory: declared.then_some(inventory),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "dev_id,client_type,client_name,client_secret,server_type,server_name,\
                          server_secret,tags,groups,timezone,model,fw_version";

    #[test]
    fn a_csv_record_becomes_a_provisioning_request() {
        let header = CsvHeader::parse(HEADER).unwrap();
        let d = header
            .device(r#"IMEI:1,md5,IMEI:1,s3cret,md5,updraft,srv,"ring=canary;site=Bldg 4, floor 2",lab;eu,Europe/Paris,M1,1.0"#)
            .unwrap();
        assert_eq!(d.dev_id, "IMEI:1");
        assert_eq!(d.client.secret, "s3cret");
        assert_eq!(d.tags["site"], "Bldg 4, floor 2");
        assert_eq!(d.groups, ["lab", "eu"]);
        assert_eq!(d.timezone.as_deref(), Some("Europe/Paris"));
        let inv = d.inventory.unwrap();
        assert_eq!(
            (
                inv.model.as_deref(),
                inv.fw_version.as_deref(),
                inv.manufacturer
            ),
            (Some("M1"), Some("1.0"), None)
        );
        let bare = header
            .device("IMEI:2,md5,IMEI:2,s,md5,updraft,srv,,,,,")
            .unwrap();
        assert!(bare.tags.is_empty() && bare.groups.is_empty() && bare.inventory.is_none());
    }

    #[test]
    fn bad_csv_records_name_the_problem_and_the_dev_id() {
        let header = CsvHeader::parse(HEADER).unwrap();
        for (line, dev_id, needle) in [
            (
                "IMEI:1,md5,IMEI:1,s,md5,updraft,srv,,",
                Some("IMEI:1"),
                "9 fields, the header has 12",
            ),
            (
                "IMEI:1,md5,IMEI:1,,md5,updraft,srv,,,,,",
                Some("IMEI:1"),
                "client_secret is empty",
            ),
            (
                "IMEI:1,md5,IMEI:1,s,md5,updraft,srv,ring,,,,",
                Some("IMEI:1"),
                "tags: \"ring\" is not key=value",
            ),
            (
                "IMEI:1,md5,IMEI:1,s,md5,updraft,srv,a=1;a=2,,,,",
                Some("IMEI:1"),
                "key \"a\" given twice",
            ),
            ("\"IMEI:1,md5", None, "unterminated quoted field"),
        ] {
            let r = header.device(line).unwrap_err();
            assert_eq!(r.dev_id.as_deref(), dev_id, "{line}");
            assert!(r.message.contains(needle), "{line}: {}", r.message);
        }
    }

    #[test]
    fn the_header_must_be_known_complete_and_unique() {
        for (line, needle) in [
            ("dev_id,colour", "unknown column \"colour\""),
            ("dev_id,dev_id", "column \"dev_id\" given twice"),
            (
                "dev_id,client_type",
                "required column \"client_name\" missing",
            ),
        ] {
            let err = CsvHeader::parse(line).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }

    #[test]
    fn json_errors_drop_the_document_position_and_keep_the_dev_id() {
        let r = json_device(r#"{"dev_id": "IMEI:7", "client": {}}"#).unwrap_err();
        assert_eq!(r.dev_id.as_deref(), Some("IMEI:7"));
        assert!(
            r.message.starts_with("invalid JSON: missing field `type`"),
            "{}",
            r.message
        );
        assert!(!r.message.contains("line 1"), "{}", r.message);
        let r = json_device("{not json").unwrap_err();
        assert_eq!(r.dev_id, None);
        assert!(r.message.contains("(column 2)"), "{}", r.message);
    }
}
