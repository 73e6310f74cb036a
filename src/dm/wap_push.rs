//! WAP Push framing of a Package 0 (brief 4.3): connectionless WSP push to WDP port 2948,
//! carried in SMS user data with a port-addressing UDH (and concatenation when needed).

/// WDP destination port of OMA DM notifications.
pub const DM_PUSH_PORT: u16 = 2948;
/// Origin port used by the spec example (0xC002).
pub const ORIGIN_PORT: u16 = 0xC002;
/// Largest 8-bit SMS user data.
pub const SMS_USER_DATA_MAX: usize = 140;

/// The WSP push PDU: TID 0x01, PDU type Push 0x06, headers length 3, Content-Type
/// `application/vnd.syncml.notification` (well-known 0x44 → `C4`), X-WAP-Application-ID
/// (`AF`) = `x-wap-application:syncml.dm` (0x07 → `87`), then the Package 0 body.
pub fn wsp_push_pdu(package0: &[u8]) -> Vec<u8> {
    let mut pdu = Vec::with_capacity(6 + package0.len());
    pdu.extend_from_slice(&[0x01, 0x06, 0x03, 0xC4, 0xAF, 0x87]);
    pdu.extend_from_slice(package0);
    pdu
}

/// Splits a WSP PDU into SMS user-data segments (8-bit DCS), each ≤ 140 bytes with its UDH.
///
/// One segment: UDH `06 05 04 0B 84 C0 02` (16-bit application port IE). Several: UDH
/// `0B 00 03 ref n i 05 04 0B 84 C0 02` (concatenation IE, 8-bit reference, then ports).
pub fn sms_user_data(pdu: &[u8], reference: u8) -> Vec<Vec<u8>> {
    let [dh, dl] = DM_PUSH_PORT.to_be_bytes();
    let [oh, ol] = ORIGIN_PORT.to_be_bytes();
    let ports = [0x05, 0x04, dh, dl, oh, ol];
    if pdu.len() + 7 <= SMS_USER_DATA_MAX {
        let mut seg = vec![0x06];
        seg.extend_from_slice(&ports);
        seg.extend_from_slice(pdu);
        return vec![seg];
    }
    let room = SMS_USER_DATA_MAX - 12;
    let chunks: Vec<&[u8]> = pdu.chunks(room).collect();
    let total = u8::try_from(chunks.len()).unwrap_or(u8::MAX);
    chunks
        .iter()
        .take(usize::from(u8::MAX))
        .enumerate()
        .map(|(i, c)| {
            let mut seg = vec![0x0B, 0x00, 0x03, reference, total, (i + 1) as u8];
            seg.extend_from_slice(&ports);
            seg.extend_from_slice(c);
            seg
        })
        .collect()
}
