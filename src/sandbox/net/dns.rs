//! DNS inside the namespace: every query over UDP reaches orch's socket on port 53 (every
//! address is local there), is logged with the name it asks for, and is answered `REFUSED` at
//! once, so that a resolver fails fast instead of waiting for a server that is not there. Names
//! are resolved by orch's proxy only.

/// The name a DNS query asks for (`example.com`), at most 255 bytes, its labels shown as
/// printable ASCII (other bytes escaped): `None` for what is not a query.
pub(super) fn query_name(packet: &[u8]) -> Option<String> {
    // The header: id, flags (QR must be 0: a query), one question at least.
    if packet.len() < 12 || packet[2] & 0x80 != 0 || u16::from_be_bytes([packet[4], packet[5]]) == 0
    {
        return None;
    }
    let mut at = 12;
    let mut name = String::new();
    loop {
        let len = usize::from(*packet.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        // A compression pointer has no place in a question; a label is at most 63 bytes.
        if len > 63 || name.len() + len > 255 {
            return None;
        }
        let label = packet.get(at..at + len)?;
        if !name.is_empty() {
            name.push('.');
        }
        for &b in label {
            if b.is_ascii_graphic() && b != b'\\' {
                name.push(char::from(b));
            } else {
                name.push_str(&format!("\\x{b:02x}"));
            }
        }
        at += len;
    }
    Some(if name.is_empty() { ".".into() } else { name })
}

/// The answer to `query`: its id and question, the response bit, `REFUSED` (5), no records.
pub(super) fn refused(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question ends at the end of its name plus type and class (4 bytes).
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1 + len;
        if len == 0 || len > 63 {
            break;
        }
    }
    let end = at + 4;
    let question = query.get(12..end)?;
    let mut out = Vec::with_capacity(end);
    out.extend_from_slice(&query[0..2]); // id
    // QR, the opcode and RD as asked; RA; RCODE 5.
    out.push(0x80 | (query[2] & 0x79));
    out.push(0x80 | 5);
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question, no records
    out.extend_from_slice(question);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(u8::try_from(l.len()).expect("short"));
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    #[test]
    fn a_query_is_named_and_refused() {
        let q = query("evil.example");
        assert_eq!(query_name(&q).as_deref(), Some("evil.example"));
        let r = refused(&q).expect("answer");
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(r[2] & 0x80, 0x80, "a response");
        assert_eq!(r[3] & 0x0f, 5, "REFUSED");
        assert_eq!(&r[12..], &q[12..]);
    }

    #[test]
    fn what_is_not_a_query_is_not_named() {
        assert_eq!(query_name(&[]), None);
        let mut answer = query("a.b");
        answer[2] |= 0x80;
        assert_eq!(query_name(&answer), None);
        let mut hostile = query("a");
        hostile[12] = 0xc0; // a pointer
        assert_eq!(query_name(&hostile), None);
        let mut odd = query("x");
        odd[13] = 0x1b; // ESC
        assert_eq!(query_name(&odd).as_deref(), Some("\\x1b"));
        assert_eq!(refused(&[0; 5]), None);
    }
}
