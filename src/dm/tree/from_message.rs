//! Typed message → element tree, in the canonical element order (the one spec examples and the
//! RTK encoder use). Encoding is exact: the same message always yields the same tree.

use super::{Element, Namespace, Node};
use crate::dm::message::{
    Alert, Chal, Command, Container, Cred, Data, Exec, Item, ItemCommand, Meta, Results, Source,
    Status, SyncML, Target,
};

fn el(name: &str) -> Element {
    Element::new(Namespace::SyncML, name)
}

fn leaf(name: &str, text: &str) -> Element {
    let mut e = el(name);
    if !text.is_empty() {
        e.push_text(text);
    }
    e
}

fn metinf(name: &str, text: &str) -> Element {
    let mut e = Element::new(Namespace::MetInf, name);
    if !text.is_empty() {
        e.push_text(text);
    }
    e
}

/// Builds the `<SyncML>` element for a message.
pub fn message_to_tree(msg: &SyncML) -> Element {
    let h = &msg.hdr;
    let mut hdr = el("SyncHdr");
    hdr.push_element(leaf("VerDTD", &h.ver_dtd));
    hdr.push_element(leaf("VerProto", &h.ver_proto));
    hdr.push_element(leaf("SessionID", &h.session_id));
    hdr.push_element(leaf("MsgID", h.msg_id.as_str()));
    hdr.push_element(target("Target", &h.target));
    hdr.push_element(source("Source", &h.source));
    if let Some(r) = &h.resp_uri {
        hdr.push_element(leaf("RespURI", r));
    }
    if h.no_resp {
        hdr.push_element(el("NoResp"));
    }
    push_cred(&mut hdr, &h.cred);
    push_meta(&mut hdr, &h.meta);

    let mut body = el("SyncBody");
    for c in &msg.body.commands {
        body.push_element(command(c));
    }
    if msg.body.final_ {
        body.push_element(el("Final"));
    }

    let mut root = el("SyncML");
    root.push_element(hdr);
    root.push_element(body);
    root
}

fn target(name: &str, t: &Target) -> Element {
    loc(name, &t.loc_uri, t.loc_name.as_deref())
}

fn source(name: &str, s: &Source) -> Element {
    loc(name, &s.loc_uri, s.loc_name.as_deref())
}

fn loc(name: &str, uri: &str, loc_name: Option<&str>) -> Element {
    let mut e = el(name);
    e.push_element(leaf("LocURI", uri));
    if let Some(n) = loc_name {
        e.push_element(leaf("LocName", n));
    }
    e
}

fn push_cred(parent: &mut Element, cred: &Option<Cred>) {
    if let Some(c) = cred {
        let mut e = el("Cred");
        push_meta(&mut e, &c.meta);
        e.push_element(leaf("Data", &c.data));
        parent.push_element(e);
    }
}

fn push_chal(parent: &mut Element, chal: &Option<Chal>) {
    if let Some(c) = chal {
        let mut e = el("Chal");
        e.push_element(meta(&c.meta));
        parent.push_element(e);
    }
}

fn push_meta(parent: &mut Element, m: &Option<Meta>) {
    if let Some(m) = m {
        parent.push_element(meta(m));
    }
}

/// `<Meta>` stays in the SyncML namespace; each child is MetInf (brief 9.7).
pub(crate) fn meta(m: &Meta) -> Element {
    let mut e = el("Meta");
    if m.field_level {
        e.push_element(metinf("FieldLevel", ""));
    }
    if let Some(f) = &m.format {
        e.push_element(metinf("Format", f.as_str()));
    }
    if let Some(t) = &m.type_ {
        e.push_element(metinf("Type", t));
    }
    if let Some(v) = &m.mark {
        e.push_element(metinf("Mark", v));
    }
    if let Some(v) = m.size {
        e.push_element(metinf("Size", &v.to_string()));
    }
    if let Some(a) = &m.anchor {
        let mut ae = metinf("Anchor", "");
        if let Some(l) = &a.last {
            ae.push_element(metinf("Last", l));
        }
        ae.push_element(metinf("Next", &a.next));
        e.push_element(ae);
    }
    if let Some(v) = &m.version {
        e.push_element(metinf("Version", v));
    }
    if let Some(v) = &m.next_nonce {
        e.push_element(metinf("NextNonce", v));
    }
    if let Some(v) = m.max_msg_size {
        e.push_element(metinf("MaxMsgSize", &v.to_string()));
    }
    if let Some(v) = m.max_obj_size {
        e.push_element(metinf("MaxObjSize", &v.to_string()));
    }
    for v in &m.emi {
        e.push_element(metinf("EMI", v));
    }
    if let Some(mem) = &m.mem {
        let mut me = metinf("Mem", "");
        if mem.shared_mem {
            me.push_element(metinf("SharedMem", ""));
        }
        if let Some(v) = mem.free_mem {
            me.push_element(metinf("FreeMem", &v.to_string()));
        }
        if let Some(v) = mem.free_id {
            me.push_element(metinf("FreeID", &v.to_string()));
        }
        e.push_element(me);
    }
    e
}

fn command(c: &Command) -> Element {
    match c {
        Command::Add(x) => item_command("Add", x),
        Command::Copy(x) => item_command("Copy", x),
        Command::Delete(x) => item_command("Delete", x),
        Command::Get(x) => item_command("Get", x),
        Command::Replace(x) => item_command("Replace", x),
        Command::Alert(x) => alert(x),
        Command::Exec(x) => exec(x),
        Command::Atomic(x) => container("Atomic", x),
        Command::Sequence(x) => container("Sequence", x),
        Command::Results(x) => results(x),
        Command::Status(x) => status(x),
        Command::Unknown(u) => {
            let mut e = el(&u.name);
            e.push_element(leaf("CmdID", u.cmd_id.as_str()));
            e
        }
    }
}

fn item_command(name: &str, c: &ItemCommand) -> Element {
    let mut e = el(name);
    e.push_element(leaf("CmdID", c.cmd_id.as_str()));
    if c.no_resp {
        e.push_element(el("NoResp"));
    }
    push_cred(&mut e, &c.cred);
    push_meta(&mut e, &c.meta);
    for i in &c.items {
        e.push_element(item(i));
    }
    e
}

fn alert(a: &Alert) -> Element {
    let mut e = el("Alert");
    e.push_element(leaf("CmdID", a.cmd_id.as_str()));
    if a.no_resp {
        e.push_element(el("NoResp"));
    }
    push_cred(&mut e, &a.cred);
    e.push_element(leaf("Data", &a.data.to_string()));
    if let Some(c) = &a.correlator {
        e.push_element(leaf("Correlator", c));
    }
    for i in &a.items {
        e.push_element(item(i));
    }
    e
}

fn exec(x: &Exec) -> Element {
    let mut e = el("Exec");
    e.push_element(leaf("CmdID", x.cmd_id.as_str()));
    if x.no_resp {
        e.push_element(el("NoResp"));
    }
    push_cred(&mut e, &x.cred);
    push_meta(&mut e, &x.meta);
    if let Some(c) = &x.correlator {
        e.push_element(leaf("Correlator", c));
    }
    e.push_element(item(&x.item));
    e
}

fn container(name: &str, c: &Container) -> Element {
    let mut e = el(name);
    e.push_element(leaf("CmdID", c.cmd_id.as_str()));
    if c.no_resp {
        e.push_element(el("NoResp"));
    }
    push_meta(&mut e, &c.meta);
    for inner in &c.commands {
        e.push_element(command(inner));
    }
    e
}

fn status(s: &Status) -> Element {
    let mut e = el("Status");
    e.push_element(leaf("CmdID", s.cmd_id.as_str()));
    if let Some(m) = &s.msg_ref {
        e.push_element(leaf("MsgRef", m.as_str()));
    }
    if let Some(c) = &s.cmd_ref {
        e.push_element(leaf("CmdRef", c.as_str()));
    }
    e.push_element(leaf("Cmd", &s.cmd));
    for t in &s.target_ref {
        e.push_element(leaf("TargetRef", t));
    }
    for t in &s.source_ref {
        e.push_element(leaf("SourceRef", t));
    }
    push_cred(&mut e, &s.cred);
    push_chal(&mut e, &s.chal);
    e.push_element(leaf("Data", &s.data.to_string()));
    for i in &s.items {
        e.push_element(item(i));
    }
    e
}

fn results(r: &Results) -> Element {
    let mut e = el("Results");
    e.push_element(leaf("CmdID", r.cmd_id.as_str()));
    if let Some(m) = &r.msg_ref {
        e.push_element(leaf("MsgRef", m.as_str()));
    }
    e.push_element(leaf("CmdRef", r.cmd_ref.as_str()));
    push_meta(&mut e, &r.meta);
    if let Some(t) = &r.target_ref {
        e.push_element(leaf("TargetRef", t));
    }
    if let Some(t) = &r.source_ref {
        e.push_element(leaf("SourceRef", t));
    }
    for i in &r.items {
        e.push_element(item(i));
    }
    e
}

pub(crate) fn item(i: &Item) -> Element {
    let mut e = el("Item");
    if let Some(t) = &i.target {
        e.push_element(target("Target", t));
    }
    if let Some(s) = &i.source {
        e.push_element(source("Source", s));
    }
    push_meta(&mut e, &i.meta);
    if let Some(d) = &i.data {
        let mut de = el("Data");
        match d {
            Data::Text(t) if t.is_empty() => {}
            Data::Text(t) => de.push_text(t.as_str()),
            Data::Opaque(b) => de.children.push(Node::Opaque(b.clone())),
            Data::Elements(list) => {
                de.children.extend(list.iter().cloned().map(Node::Element));
            }
        }
        e.push_element(de);
    }
    if i.more_data {
        e.push_element(el("MoreData"));
    }
    e
}
