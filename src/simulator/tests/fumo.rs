//! FUMO jobs on devices that really update, without a network: Exec preconditions and State
//! values, the inline and two-step paths, the injected faults that need no download, the
//! `?list=Struct` answer the server's discovery reads, and the fleet file.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use crate::dm::message::StatusCode;
use crate::fumo::discover::{find_fumo_node, uris_from_results};
use crate::package::{KeyRing, NoProgress, PayloadEncoding, Release, SecretKey, build_delta};
use crate::simulator::fleet::draw;
use crate::simulator::{
    DeviceProfile, DownloadOptions, Faults, FirmwareState, FleetFile, FumoEnv, ImageCache,
    SimDevice, run_pending,
};

const V1: &[u8] = b"firmware one, version 1.0.0, with some padding to make a delta worth it";

fn v2() -> Vec<u8> {
    let mut v = V1.to_vec();
    v.extend_from_slice(b" and a new feature in 2.0.0");
    v
}

fn key() -> SecretKey {
    SecretKey::from_seed([11; 32])
}

fn package() -> Vec<u8> {
    let release = Release {
        manufacturer: "Updraft",
        model: "SIM-1",
        target_version: "2.0.0",
        source_version: Some("1.0.0"),
        security_version: 1,
        created_at: 0,
        expires_at: None,
    };
    build_delta(
        &release,
        V1,
        &v2(),
        PayloadEncoding::BsdiffSplitZstd,
        &key(),
        &mut NoProgress,
    )
    .unwrap()
    .bytes
}

fn device(faults: Faults) -> (Mutex<SimDevice>, FumoEnv) {
    let cache = Arc::new(ImageCache::new());
    let mut state = FirmwareState::new(crate::simulator::Firmware::new(
        "1.0.0",
        &cache,
        V1.to_vec(),
    ));
    state.faults = faults;
    let dev = SimDevice::with_firmware(DeviceProfile::new("IMEI:1", "s"), state);
    crate::startup::install_tls_provider();
    let env = FumoEnv {
        client: reqwest::Client::new(),
        keys: KeyRing::new([key().public()]),
        cache,
        download: DownloadOptions::default(),
        reboot_delay: Duration::ZERO,
    };
    (Mutex::new(dev), env)
}

/// Writes PkgData as a Replace would, and Execs Update.
async fn inline_update(dev: &Mutex<SimDevice>, correlator: &str) -> StatusCode {
    let mut d = dev.lock().await;
    d.tree
        .replace("./FUMO/fw1/Update/PkgData", "bin", None, package())
        .unwrap();
    d.after_write("./FUMO/fw1/Update/PkgData");
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("50"));
    d.exec("./FUMO/fw1/Update", Some(correlator))
}

#[tokio::test]
async fn inline_pkgdata_then_exec_update_installs_and_reports() {
    let (dev, env) = device(Faults::default());
    assert_eq!(
        dev.lock().await.tree.text("./DevDetail/FwV").as_deref(),
        Some("1.0.0")
    );
    assert_eq!(inline_update(&dev, "c-1").await, StatusCode::ACCEPTED);
    {
        let mut d = dev.lock().await;
        assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("60"));
        // One job at a time: the Exec the device is still executing is not taken twice.
        assert_eq!(d.exec("./FUMO/fw1/Update", Some("c-1")), StatusCode(405));
    }
    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!(outcome.result_code, 200, "{:?}", outcome.reason);
    let d = dev.lock().await;
    assert_eq!(
        &*d.firmware.as_ref().unwrap().running.image,
        v2().as_slice()
    );
    assert_eq!(d.tree.text("./DevDetail/FwV").as_deref(), Some("2.0.0"));
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("90"));
    let alert = &d.pending_alerts[0];
    assert_eq!(
        (alert.correlator.as_deref(), alert.result_code),
        (Some("c-1"), 200)
    );
    assert_eq!(
        alert.alert_type,
        "org.openmobilealliance.dm.firmwareupdate.update"
    );
    drop(d);
    assert!(
        run_pending(&dev, &env).await.is_none(),
        "nothing runs twice"
    );
}

#[tokio::test]
async fn exec_without_something_to_do_is_405_and_queues_nothing() {
    let (dev, env) = device(Faults::default());
    let mut d = dev.lock().await;
    assert_eq!(d.exec("./FUMO/fw1/Update", None), StatusCode(405));
    assert_eq!(
        d.exec("./FUMO/fw1/DownloadAndUpdate", None),
        StatusCode(405)
    );
    assert_eq!(d.exec("./FUMO/fw1/Download", None), StatusCode(405));
    assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some("10"));
    drop(d);
    assert!(run_pending(&dev, &env).await.is_none());
}

#[tokio::test]
async fn faults_without_a_network_end_with_their_codes() {
    for (faults, code, state) in [
        (
            Faults {
                wrong_key: true,
                ..Faults::default()
            },
            404,
            "70",
        ),
        (
            Faults {
                install_failure: Some(502),
                ..Faults::default()
            },
            502,
            "70",
        ),
    ] {
        let (dev, env) = device(faults.clone());
        assert_eq!(inline_update(&dev, "c").await, StatusCode::ACCEPTED);
        let outcome = run_pending(&dev, &env).await.unwrap();
        assert_eq!(
            outcome.result_code, code,
            "{faults:?}: {:?}",
            outcome.reason
        );
        let d = dev.lock().await;
        assert_eq!(d.tree.text("./FUMO/fw1/State").as_deref(), Some(state));
        assert_eq!(d.tree.text("./DevDetail/FwV").as_deref(), Some("1.0.0"));
        assert_eq!(d.pending_alerts[0].result_code, code);
    }
    // The user cancels before any byte is fetched (the URL is never contacted).
    let (dev, env) = device(Faults {
        user_cancel: true,
        ..Faults::default()
    });
    {
        let mut d = dev.lock().await;
        d.tree
            .replace(
                "./FUMO/fw1/DownloadAndUpdate/PkgURL",
                "chr",
                None,
                b"http://192.0.2.1/never".to_vec(),
            )
            .unwrap();
        assert_eq!(
            d.exec("./FUMO/fw1/DownloadAndUpdate", Some("c")),
            StatusCode::ACCEPTED
        );
    }
    let outcome = run_pending(&dev, &env).await.unwrap();
    assert_eq!((outcome.result_code, outcome.wire_bytes), (401, 0));
}

#[tokio::test]
async fn fall_back_reports_success_on_the_old_image_and_never_report_stays_silent() {
    let (dev, env) = device(Faults {
        fall_back: true,
        ..Faults::default()
    });
    inline_update(&dev, "c").await;
    assert_eq!(run_pending(&dev, &env).await.unwrap().result_code, 200);
    {
        let d = dev.lock().await;
        assert_eq!(d.tree.text("./DevDetail/FwV").as_deref(), Some("1.0.0"));
        assert_eq!(&*d.firmware.as_ref().unwrap().running.image, V1);
        assert_eq!(d.pending_alerts[0].result_code, 200);
    }
    let (dev, env) = device(Faults {
        never_report: true,
        ..Faults::default()
    });
    inline_update(&dev, "c").await;
    assert_eq!(run_pending(&dev, &env).await.unwrap().result_code, 200);
    let d = dev.lock().await;
    assert_eq!(d.tree.text("./DevDetail/FwV").as_deref(), Some("2.0.0"));
    assert!(d.pending_alerts.is_empty(), "no report owed");
}

#[test]
fn list_struct_answers_what_the_server_discovery_reads() {
    let (dev, _) = device(Faults::default());
    let d = dev.try_lock().unwrap();
    let nodes = d.tree.list_struct("./FUMO?list=Struct").unwrap();
    let uris: Vec<&str> = nodes.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(uris[0], "./FUMO");
    assert!(
        uris.contains(&"./FUMO/fw1/DownloadAndUpdate/PkgURL"),
        "{uris:?}"
    );
    let found = uris_from_results(uris.iter().map(|u| (*u, None)));
    assert_eq!(find_fumo_node(&found).as_deref(), Some("./FUMO/fw1"));
    assert_eq!(
        d.tree.list_struct("./FUMO?list=StructData"),
        Err(StatusCode::OPTIONAL_FEATURE_NOT_SUPPORTED)
    );
    assert_eq!(
        d.tree.list_struct("./Nope?list=Struct"),
        Err(StatusCode::NOT_FOUND)
    );
    drop(d);
    // A device without a download client has no PkgURL nodes to find.
    let (dev, _) = device(Faults::default());
    let mut d = dev.try_lock().unwrap();
    d.remove_fumo_capabilities(false, true);
    let nodes = d.tree.list_struct("./FUMO?list=Struct").unwrap();
    assert!(
        nodes.iter().all(|(u, _)| !u.contains("Download")),
        "{nodes:?}"
    );
    assert!(nodes.iter().any(|(u, _)| u == "./FUMO/fw1/Update/PkgData"));
}

#[test]
fn the_example_fleet_file_parses_and_fault_rates_hit_their_share() {
    let text = include_str!("../../../docs/fleet.example.toml");
    let fleet = FleetFile::parse(text).unwrap();
    assert_eq!(fleet.groups.len(), 2);
    assert_eq!(fleet.groups[0].count, 20);
    assert!(!fleet.groups[1].download);
    assert_eq!(fleet.groups[0].tags["ring"], "canary");
    assert_eq!(fleet.groups[0].groups, ["eu-lab", "handsets"]);
    assert_eq!(fleet.groups[1].timezone.as_deref(), Some("America/Chicago"));
    assert!(fleet.groups[1].groups.is_empty());
    let rates = &fleet.groups[0].faults;
    let hits = (1..=1000)
        .filter(|i| rates.pick("g", *i).0.drop_after.is_some())
        .count();
    assert!((200..300).contains(&hits), "25% of 1000 drew {hits}");
    assert!((1..=1000).all(|i| draw("g", i, "x") < 1.0));
    let none = crate::simulator::FaultRates::default();
    assert!((1..=100).all(|i| none.pick("g", i).0 == Faults::default()));
    // Unknown keys, overlapping prefixes and rates out of range are refused.
    assert!(FleetFile::parse(&text.replace("count = 5", "count = 5\ncolour = 1")).is_err());
    assert!(FleetFile::parse(&text.replace("IMEI:86000000000", "IMEI:3569")).is_err());
    assert!(FleetFile::parse(&text.replace("corrupt = 0.05", "corrupt = 1.5")).is_err());
}
