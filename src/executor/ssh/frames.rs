//! The one channel between orch's driver of a remote attempt (here) and orch's copy on the host
//! (`orch remote-run`): the stdin and stdout of one `ssh` session, in frames of a tag byte, a
//! big-endian `u32` length and that many bytes. A frame longer than its tag allows is refused
//! (the channel is then broken): what the host sends is untrusted input, read bounded.

use std::io::{Read, Write};

/// From the driver: the job (JSON, [`super::job::Job`]).
pub(crate) const JOB: u8 = b'J';
/// From the driver: the supervisor's answer to a report (the bytes of its `answer.json`).
pub(crate) const ANSWER: u8 = b'A';
/// From the driver: the last snapshot is safe on the lead's machine; the host may remove the
/// attempt's worktree.
pub(crate) const DONE: u8 = b'D';
/// From the host: a piece of the agent's output.
pub(crate) const LOG: u8 = b'L';
/// From the host: a snapshot of the worktree: the commit's id (40 hex) then a git bundle.
pub(crate) const SNAPSHOT: u8 = b'S';
/// From the host: the agent's report (the bytes of its `report.json`), after its snapshot.
pub(crate) const REPORT: u8 = b'R';
/// From the host: the agent ended with this exit status (decimal), after its last snapshot.
pub(crate) const EXIT: u8 = b'X';
/// From the host: orch's copy there could not run the attempt (a message). Before
/// [`STARTED`], the host could not take the attempt (orch's own preparation there failed, the
/// agent never ran); after it, the attempt failed.
pub(crate) const ERROR: u8 = b'E';
/// From the host: orch's copy there is done preparing the attempt and hands it to the agent
/// (sent once, before the agent's first output). What comes before it is orch's own side alone.
pub(crate) const STARTED: u8 = b'G';

/// The most one frame of `tag` may carry.
pub(crate) fn max_len(tag: u8) -> usize {
    match tag {
        SNAPSHOT => SNAPSHOT_MAX,
        LOG => 64 * 1024,
        JOB => 16 * 1024 * 1024,
        _ => 1024 * 1024,
    }
}

/// The largest snapshot bundle taken from a host.
pub(crate) const SNAPSHOT_MAX: usize = 512 * 1024 * 1024;

/// Writes one frame.
pub(crate) fn write(w: &mut impl Write, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| std::io::Error::other("a frame of more than 4 GiB"))?;
    let mut head = [0u8; 5];
    head[0] = tag;
    head[1..].copy_from_slice(&len.to_be_bytes());
    w.write_all(&head)?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame: `None` at a clean end of the stream; an error for an unknown tag, a frame
/// longer than its tag allows, or a stream cut inside a frame.
pub(crate) fn read(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let tag = head[0];
    if ![
        JOB, ANSWER, DONE, LOG, SNAPSHOT, REPORT, EXIT, ERROR, STARTED,
    ]
    .contains(&tag)
    {
        return Err(std::io::Error::other(format!(
            "an unknown frame tag {tag:#04x}"
        )));
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > max_len(tag) {
        return Err(std::io::Error::other(format!(
            "a frame `{}` of {len} bytes (at most {})",
            char::from(tag),
            max_len(tag)
        )));
    }
    // Grown as the bytes come (a header alone claims no memory).
    let mut payload = Vec::new();
    r.take(len as u64).read_to_end(&mut payload)?;
    if payload.len() < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some((tag, payload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused() {
        let mut buf = Vec::new();
        write(&mut buf, LOG, b"hello").expect("write");
        write(&mut buf, EXIT, b"0").expect("write");
        let mut r = &buf[..];
        assert_eq!(read(&mut r).expect("read"), Some((LOG, b"hello".to_vec())));
        assert_eq!(read(&mut r).expect("read"), Some((EXIT, b"0".to_vec())));
        assert_eq!(read(&mut r).expect("end"), None);
        // An unknown tag, an oversized frame, a cut frame.
        for bad in [
            vec![b'Z', 0, 0, 0, 1, 0],
            vec![LOG, 0, 2, 0, 0],
            vec![REPORT, 0, 0, 0, 9, b'x'],
        ] {
            assert!(read(&mut &bad[..]).is_err(), "{bad:?}");
        }
    }
}
