//! Property tests: codec round trips over arbitrary messages; Large Object chunking then
//! reassembly for arbitrary sizes and MaxMsgSize values, through the real engine.

use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

use crate::dm::message::*;
use crate::dm::{Encoding, Limits, decode, encode};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:/+=-]{1,12}"
}

/// Item data text: anything printable, markup characters included, spaces kept.
fn text() -> impl Strategy<Value = String> {
    "[ -~éß€]{0,24}"
}

fn id() -> impl Strategy<Value = Id> {
    (1u32..500).prop_map(Id::from)
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::B64),
        Just(Format::Bin),
        Just(Format::Chr),
        Just(Format::Int),
        Just(Format::Node),
        token().prop_map(|t| Format::parse(&t))
    ]
}

fn meta() -> BoxedStrategy<Meta> {
    (
        (
            any::<bool>(),
            of(format()),
            of(token()),
            of(token()),
            of(0u64..1 << 40),
        ),
        (
            of((of(token()), token()).prop_map(|(last, next)| Anchor { last, next })),
            of(token()),
            of(token()),
        ),
        (of(0u64..1 << 32), of(0u64..1 << 32), vec(token(), 0..2)),
        of(
            (any::<bool>(), of(0u64..1000), of(0u64..1000)).prop_map(|(s, m, i)| Mem {
                shared_mem: s,
                free_mem: m,
                free_id: i,
            }),
        ),
    )
        .prop_map(
            |(
                (fl, format, type_, mark, size),
                (anchor, version, next_nonce),
                (mms, mos, emi),
                mem,
            )| Meta {
                field_level: fl,
                format,
                type_,
                mark,
                size,
                anchor,
                version,
                next_nonce,
                max_msg_size: mms,
                max_obj_size: mos,
                emi,
                mem,
            },
        )
        .boxed()
}

fn data(opaque: bool) -> impl Strategy<Value = Data> {
    let t = text().prop_map(Data::Text);
    if opaque {
        prop_oneof![t, vec(any::<u8>(), 0..40).prop_map(Data::Opaque)].boxed()
    } else {
        t.boxed()
    }
}

fn item(opaque: bool) -> BoxedStrategy<Item> {
    (
        of(token()),
        of(token()),
        of(token()),
        of(meta()),
        of(data(opaque)),
        any::<bool>(),
    )
        .prop_map(|(t, s, n, meta, data, more_data)| Item {
            target: t.map(|u| Target {
                loc_uri: u,
                loc_name: n.clone(),
            }),
            source: s.map(|u| Source {
                loc_uri: u,
                loc_name: None,
            }),
            meta,
            data,
            more_data,
        })
        .boxed()
}

fn cred() -> BoxedStrategy<Cred> {
    (of(meta()), token())
        .prop_map(|(meta, data)| Cred { meta, data })
        .boxed()
}

fn leaf_command(opaque: bool) -> BoxedStrategy<Command> {
    let ic = (
        id(),
        any::<bool>(),
        of(cred()),
        of(meta()),
        vec(item(opaque), 1..3),
    )
        .prop_map(|(cmd_id, no_resp, cred, meta, items)| ItemCommand {
            cmd_id,
            no_resp,
            cred,
            meta,
            items,
        })
        .boxed();
    prop_oneof![
        ic.clone().prop_map(Command::Get),
        ic.clone().prop_map(Command::Replace),
        ic.clone().prop_map(Command::Add),
        ic.clone().prop_map(Command::Delete),
        ic.prop_map(Command::Copy),
        (
            id(),
            any::<bool>(),
            any::<u16>(),
            of(token()),
            vec(item(opaque), 0..2)
        )
            .prop_map(
                |(cmd_id, no_resp, code, correlator, items)| Command::Alert(Alert {
                    cmd_id,
                    no_resp,
                    cred: None,
                    data: AlertCode(code),
                    correlator,
                    items
                })
            ),
        (id(), of(meta()), of(token()), item(opaque)).prop_map(
            |(cmd_id, meta, correlator, item)| {
                Command::Exec(Exec {
                    cmd_id,
                    no_resp: false,
                    cred: None,
                    meta,
                    correlator,
                    item,
                })
            }
        ),
        (
            id(),
            of(id()),
            of(id()),
            token(),
            vec(token(), 0..2),
            vec(token(), 0..2),
            of(meta()),
            any::<u16>(),
            vec(item(opaque), 0..2)
        )
            .prop_map(
                |(cmd_id, msg_ref, cmd_ref, cmd, target_ref, source_ref, chal, code, items)| {
                    Command::Status(Status {
                        cmd_id,
                        msg_ref,
                        cmd_ref,
                        cmd,
                        target_ref,
                        source_ref,
                        cred: None,
                        chal: chal.map(|meta| Chal { meta }),
                        data: StatusCode(code),
                        items,
                    })
                }
            ),
        (
            id(),
            of(id()),
            id(),
            of(meta()),
            of(token()),
            of(token()),
            vec(item(opaque), 1..3)
        )
            .prop_map(
                |(cmd_id, msg_ref, cmd_ref, meta, target_ref, source_ref, items)| {
                    Command::Results(Results {
                        cmd_id,
                        msg_ref,
                        cmd_ref,
                        meta,
                        target_ref,
                        source_ref,
                        items,
                    })
                }
            ),
    ]
    .boxed()
}

fn command(opaque: bool) -> BoxedStrategy<Command> {
    leaf_command(opaque)
        .prop_recursive(2, 8, 3, move |inner| {
            (id(), any::<bool>(), vec(inner, 0..3), any::<bool>()).prop_map(
                |(cmd_id, no_resp, commands, atomic)| {
                    let c = Container {
                        cmd_id,
                        no_resp,
                        meta: None,
                        commands,
                    };
                    if atomic {
                        Command::Atomic(c)
                    } else {
                        Command::Sequence(c)
                    }
                },
            )
        })
        .boxed()
}

fn message(opaque: bool) -> impl Strategy<Value = SyncML> {
    (
        (
            "[A-Za-z0-9]{1,6}",
            id(),
            token(),
            token(),
            of(token()),
            of(token()),
            any::<bool>(),
            of(cred()),
            of(meta()),
        ),
        vec(command(opaque), 0..5),
        any::<bool>(),
    )
        .prop_map(
            |((session_id, msg_id, t, s, ln, resp, no_resp, cred, meta), commands, final_)| {
                SyncML {
                    hdr: SyncHdr {
                        ver_dtd: "1.2".into(),
                        ver_proto: "DM/1.2".into(),
                        session_id,
                        msg_id,
                        target: Target {
                            loc_uri: t,
                            loc_name: None,
                        },
                        source: Source {
                            loc_uri: s,
                            loc_name: ln,
                        },
                        resp_uri: resp,
                        no_resp,
                        cred,
                        meta,
                    },
                    body: SyncBody { commands, final_ },
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn xml_round_trip(m in message(false)) {
        let bytes = encode(&m, Encoding::Xml);
        let (back, enc) = decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(enc, Encoding::Xml);
        prop_assert_eq!(&back, &m);
        // Canonical: re-encoding is byte-identical.
        prop_assert_eq!(encode(&back, Encoding::Xml), bytes);
    }

    #[test]
    fn wbxml_round_trip(m in message(true)) {
        let bytes = encode(&m, Encoding::Wbxml);
        let (back, enc) = decode(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(enc, Encoding::Wbxml);
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(encode(&back, Encoding::Wbxml), bytes);
    }

    #[test]
    fn pretty_xml_decodes_like_compact(m in message(false)) {
        let pretty = crate::dm::xml::write_tree_pretty(&crate::dm::tree::message_to_tree(&m));
        let (back, _) = decode(pretty.as_bytes(), &Limits::default()).unwrap();
        prop_assert_eq!(back, m);
    }

    #[test]
    fn decoder_never_panics_on_garbage(bytes in vec(any::<u8>(), 0..300)) {
        let _ = decode(&bytes, &Limits::default());
        let mut w = vec![0x02, 0xA4, 0x01, 0x6A, 0x00];
        w.extend_from_slice(&bytes);
        let _ = decode(&w, &Limits::default());
    }

    /// The engine sends an object of any size to a device with any MaxMsgSize; a simulated
    /// device answering 213 + Alert 1222 reassembles exactly the original bytes, every reply
    /// fits MaxMsgSize, Size appears only on the first chunk.
    #[test]
    fn large_object_through_engine(len in 1usize..6000, max_msg in 1100u64..4000, wbxml in any::<bool>()) {
        let enc = if wbxml { Encoding::Wbxml } else { Encoding::Xml };
        let payload: Vec<u8> = (0..len).map(|i| (i * 31 % 256) as u8).collect();
        let got = super::lo_sim::deliver(&payload, max_msg, enc);
        prop_assert_eq!(&got, &payload);
        let got = super::lo_sim::deliver_by_reference(&payload, max_msg, enc);
        prop_assert_eq!(got, payload);
    }
}
