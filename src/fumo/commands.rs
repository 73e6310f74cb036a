//! The DM commands of a FUMO delivery (brief 5.4), as queued operations.

use crate::dm::message::Format;
use crate::dm::session::{Operation, Value};

use super::vocabulary::{Mode, Stage};

/// `Replace <x>/<stage>/PkgURL` with `url`, then `Exec <x>/<stage>` with the Correlator.
/// The caller queues both in one sequence group so the device executes them in order.
pub fn url_delivery(node: &str, mode: Mode, url: &str, correlator: &str) -> Vec<Operation> {
    let stage = match mode {
        Mode::UrlTwoStep => Stage::Download,
        _ => Stage::DownloadAndUpdate,
    };
    let at = format!("{}/{}", node.trim_end_matches('/'), stage.node_name());
    vec![
        Operation::Replace {
            uri: format!("{at}/PkgURL"),
            value: Value::text(Format::Chr, url),
        },
        exec(&at, correlator),
    ]
}

/// `Exec <x>/Update` with the Correlator: the second step, or the end of an inline delivery.
pub fn exec_update(node: &str, correlator: &str) -> Operation {
    exec(
        &format!(
            "{}/{}",
            node.trim_end_matches('/'),
            Stage::Update.node_name()
        ),
        correlator,
    )
}

/// Where an inline package goes: `<x>/Update/PkgData`.
pub fn pkg_data_uri(node: &str) -> String {
    format!("{}/Update/PkgData", node.trim_end_matches('/'))
}

fn exec(uri: &str, correlator: &str) -> Operation {
    Operation::Exec {
        uri: uri.to_owned(),
        data: None,
        correlator: Some(correlator.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_mode_replaces_pkgurl_then_execs_downloadandupdate() {
        let ops = url_delivery("./FUMO/fw1/", Mode::Url, "https://dl/x", "upd-1-1");
        assert_eq!(ops[0].uri(), "./FUMO/fw1/DownloadAndUpdate/PkgURL");
        assert!(
            matches!(&ops[1], Operation::Exec { uri, correlator: Some(c), .. }
            if uri == "./FUMO/fw1/DownloadAndUpdate" && c == "upd-1-1")
        );
        let two = url_delivery("./FUMO/fw1", Mode::UrlTwoStep, "u", "c");
        assert_eq!(two[0].uri(), "./FUMO/fw1/Download/PkgURL");
        assert_eq!(two[1].uri(), "./FUMO/fw1/Download");
        assert_eq!(exec_update("./FUMO/fw1", "c").uri(), "./FUMO/fw1/Update");
        assert_eq!(pkg_data_uri("./FUMO/fw1"), "./FUMO/fw1/Update/PkgData");
    }
}
