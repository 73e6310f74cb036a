//! OMA Download 1.0, sans-IO: the Download Descriptor we serve and the install-notify
//! status line a device posts back (see the protocol brief, section 5.7).

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// The descriptor's media type.
pub const CONTENT_TYPE: &str = "application/vnd.oma.dd+xml";
/// The object type we declare for a package file.
pub const PACKAGE_TYPE: &str = "application/octet-stream";
const NAMESPACE: &str = "http://www.openmobilealliance.org/xmlns/dd";

/// What a descriptor says about one package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor<'a> {
    pub object_uri: &'a str,
    pub install_notify_uri: &'a str,
    pub size: u64,
    pub name: &'a str,
    pub vendor: &'a str,
    pub description: &'a str,
}

/// The descriptor document (`<media xmlns=…>` with DDVersion 1.0).
pub fn render(dd: &Descriptor<'_>) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new());
    let element = |writer: &mut Writer<Vec<u8>>, name: &str, text: &str| {
        writer
            .write_event(Event::Start(BytesStart::new(name)))
            .and_then(|()| writer.write_event(Event::Text(BytesText::new(text))))
            .and_then(|()| writer.write_event(Event::End(BytesEnd::new(name))))
            .expect("writing to a Vec cannot fail");
    };
    writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .expect("writing to a Vec cannot fail");
    writer
        .write_event(Event::Start(
            BytesStart::new("media").with_attributes([("xmlns", NAMESPACE)]),
        ))
        .expect("writing to a Vec cannot fail");
    element(&mut writer, "DDVersion", "1.0");
    element(&mut writer, "type", PACKAGE_TYPE);
    element(&mut writer, "size", &dd.size.to_string());
    element(&mut writer, "objectURI", dd.object_uri);
    element(&mut writer, "installNotifyURI", dd.install_notify_uri);
    element(&mut writer, "name", dd.name);
    element(&mut writer, "vendor", dd.vendor);
    element(&mut writer, "description", dd.description);
    writer
        .write_event(Event::End(BytesEnd::new("media")))
        .expect("writing to a Vec cannot fail");
    writer.into_inner()
}

/// A parsed install-notify body: `900 Success`, `902 User Cancelled`, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallStatus {
    pub code: u16,
    pub message: String,
}

impl InstallStatus {
    /// 900 is the only success; every other code is a failure of some kind.
    pub fn is_success(&self) -> bool {
        self.code == 900
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an install notification is a status line: a code from 900 to 999, then its text")]
pub struct BadStatusLine;

/// Parses the first line of an install-notify body. Devices vary in what follows the
/// code (the spec's phrase, a shorter one, nothing, a trailing newline), so only the
/// three-digit 9xx code is required; the text is kept as sent, printable ASCII only.
pub fn parse_status(body: &[u8]) -> Result<InstallStatus, BadStatusLine> {
    let text = std::str::from_utf8(body).map_err(|_| BadStatusLine)?;
    let line = text.trim_start().lines().next().unwrap_or("").trim();
    let (code, message) = match line.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((code, rest)) => (code, rest.trim()),
        None => (line, ""),
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadStatusLine);
    }
    let code: u16 = code.parse().map_err(|_| BadStatusLine)?;
    if !(900..=999).contains(&code) {
        return Err(BadStatusLine);
    }
    let message = message
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(128)
        .collect();
    Ok(InstallStatus { code, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_has_the_required_elements_escaped() {
        let xml = render(&Descriptor {
            object_uri: "https://fota.example/dl/abc",
            install_notify_uri: "https://fota.example/dl/abc/notify",
            size: 1234,
            name: "X1 2.0",
            vendor: "Acme & Sons",
            description: "from <1.0>",
        });
        let xml = String::from_utf8(xml).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <media xmlns=\"http://www.openmobilealliance.org/xmlns/dd\">\
             <DDVersion>1.0</DDVersion><type>application/octet-stream</type><size>1234</size>\
             <objectURI>https://fota.example/dl/abc</objectURI>\
             <installNotifyURI>https://fota.example/dl/abc/notify</installNotifyURI>\
             <name>X1 2.0</name><vendor>Acme &amp; Sons</vendor>\
             <description>from &lt;1.0&gt;</description></media>"
        );
    }

    #[test]
    fn status_lines() {
        let ok = parse_status(b"900 Success\r\n").unwrap();
        assert_eq!((ok.code, ok.message.as_str()), (900, "Success"));
        assert!(ok.is_success());
        let cancelled = parse_status(b"  902 User Cancelled").unwrap();
        assert_eq!(cancelled.code, 902);
        assert!(!cancelled.is_success());
        assert_eq!(parse_status(b"905").unwrap().message, "");
        assert_eq!(
            parse_status(b"905 Attribute\tmismatch\nextra")
                .unwrap()
                .message,
            "Attribute mismatch"
        );
        for bad in [
            &b""[..],
            b"200 OK",
            b"9000 x",
            b"abc",
            b"\xff\xfe",
            b"1e3 x",
        ] {
            assert_eq!(parse_status(bad), Err(BadStatusLine), "{bad:?}");
        }
    }
}
