//! FUMO node discovery (brief 5.1: the location is the vendor's choice; never hard-coded):
//! the structure under the configured roots, read with `?list=Struct`, names the node.

/// The Get that lists the structure under `root`.
pub fn list_struct_uri(root: &str) -> String {
    format!("{}?list=Struct", root.trim_end_matches('/'))
}

/// The FUMO node among the URIs of a `?list=Struct` result: an interior node `<x>` with a
/// `State` leaf and an `Update` or `DownloadAndUpdate` child. The first in URI order wins.
pub fn find_fumo_node(uris: &[String]) -> Option<String> {
    let has = |u: &str| uris.iter().any(|x| x.trim_end_matches('/') == u);
    let mut nodes: Vec<&str> = uris
        .iter()
        .filter_map(|u| u.trim_end_matches('/').strip_suffix("/State"))
        .filter(|x| has(&format!("{x}/DownloadAndUpdate")) || has(&format!("{x}/Update")))
        .collect();
    nodes.sort_unstable();
    nodes.first().map(|s| (*s).to_owned())
}

/// The URIs a `?list=Struct` Results item lists: its Source and, when the device sends the
/// structure as text, one URI per line.
pub fn uris_from_results<'a>(
    items: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (source, data) in items {
        out.push(source.to_owned());
        if let Some(text) = data {
            out.extend(
                text.split(['\n', ','])
                    .map(str::trim)
                    .filter(|l| l.starts_with("./"))
                    .map(str::to_owned),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_node_with_state_and_an_exec_child_is_found() {
        let tree = uris(&[
            "./FUMO",
            "./FUMO/fw1",
            "./FUMO/fw1/PkgName",
            "./FUMO/fw1/DownloadAndUpdate",
            "./FUMO/fw1/DownloadAndUpdate/PkgURL",
            "./FUMO/fw1/State",
        ]);
        assert_eq!(find_fumo_node(&tree).as_deref(), Some("./FUMO/fw1"));
    }

    #[test]
    fn a_state_leaf_alone_is_not_a_fumo_node() {
        let tree = uris(&["./Vendor/Thing/State", "./Vendor/Thing/Other"]);
        assert_eq!(find_fumo_node(&tree), None);
    }

    #[test]
    fn a_vendor_location_is_found_too() {
        let tree = uris(&[
            "./DevDetail/Ext/Software/FwUpdate/x/State",
            "./DevDetail/Ext/Software/FwUpdate/x/Update",
            "./DevDetail/Ext/Software/FwUpdate/x/Update/PkgData",
        ]);
        assert_eq!(
            find_fumo_node(&tree).as_deref(),
            Some("./DevDetail/Ext/Software/FwUpdate/x")
        );
        assert_eq!(list_struct_uri("./FUMO/"), "./FUMO?list=Struct");
    }

    #[test]
    fn structure_sent_as_text_lines_is_read() {
        let got = uris_from_results(
            [("./FUMO", Some("./FUMO/a\n./FUMO/a/State\n./FUMO/a/Update"))].into_iter(),
        );
        assert_eq!(find_fumo_node(&got).as_deref(), Some("./FUMO/a"));
    }
}
