//! How long a voice note or video plays, read from its container where that
//! is cheap: its first and last bytes, never a decode. No crate reads a
//! duration from a file's two ends (the media crates want the whole file,
//! seekable), and a browser's MediaRecorder writes WebM without a duration
//! field at all, so its last block's time is what says it.
//!
//! - Ogg (Opus, Vorbis): the last page's granule position, less Opus's
//!   pre-skip, over the sample rate.
//! - WebM / Matroska: the segment's `Duration`, else the time of the last
//!   block of the last cluster in the tail.
//! - MP4 / QuickTime: the movie header's (`mvhd`) duration over its
//!   timescale, wherever the `moov` box is, head or tail.
//!
//! Anything else, or a file these do not make sense of, has no duration:
//! a client then reads it while playing.

/// The duration of a file of type `mime`, from its first bytes (`head`)
/// and its last (`tail`; the same bytes when the file is short), in ms.
pub fn duration_ms(mime: &str, head: &[u8], tail: &[u8]) -> Option<u64> {
    let ms = match mime {
        "audio/ogg" | "audio/opus" => ogg(head, tail),
        "audio/webm" | "video/webm" | "video/x-matroska" => matroska(head, tail),
        "video/mp4" | "audio/mp4" | "audio/m4a" | "video/quicktime" => {
            mp4(head).or_else(|| mp4(tail))
        }
        _ => None,
    }?;
    // Nothing plays for a week; a number like that is a misread.
    (ms > 0 && ms < 7 * 24 * 3600 * 1000).then_some(ms)
}

fn ogg(head: &[u8], tail: &[u8]) -> Option<u64> {
    // The rate (and Opus's pre-skip) from the identification header.
    let (rate, pre_skip) = if let Some(at) = find(head, b"OpusHead") {
        let skip = u16::from_le_bytes(head.get(at + 10..at + 12)?.try_into().ok()?);
        (48_000u64, u64::from(skip))
    } else if let Some(at) = find(head, b"\x01vorbis") {
        let rate = u32::from_le_bytes(head.get(at + 12..at + 16)?.try_into().ok()?);
        (u64::from(rate), 0)
    } else {
        return None;
    };
    // The last page: its granule position is the samples up to its end.
    let page = rfind(tail, b"OggS")?;
    let granule = i64::from_le_bytes(tail.get(page + 6..page + 14)?.try_into().ok()?);
    let samples = u64::try_from(granule).ok()?.checked_sub(pre_skip)?;
    // A granule near i64::MAX times 1000 overflows: no duration, not a panic.
    samples.checked_mul(1000)?.checked_div(rate)
}

// Matroska element ids.
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_a966;
const TIMECODE_SCALE: u32 = 0x2a_d7b1;
const DURATION: u32 = 0x4489;
const CLUSTER: u32 = 0x1f43_b675;
const CLUSTER_TIMECODE: u32 = 0xe7;
const SIMPLE_BLOCK: u32 = 0xa3;
const BLOCK_GROUP: u32 = 0xa0;
const BLOCK: u32 = 0xa1;

fn matroska(head: &[u8], tail: &[u8]) -> Option<u64> {
    let (scale_ns, duration) = info(head)?;
    let ticks = match duration {
        Some(d) => d,
        None => last_block_time(tail)? as f64,
    };
    let ms = ticks * scale_ns as f64 / 1_000_000.0;
    (ms.is_finite() && ms >= 0.0).then_some(ms.round() as u64)
}

/// A Matroska variable-size integer at `at`: its value (marker bit off)
/// and length; `unknown` when every value bit is set (an unknown size).
fn vint(buf: &[u8], at: usize) -> Option<(u64, usize, bool)> {
    let first = *buf.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let mut value = u64::from(first) & (0xff >> len);
    for i in 1..len {
        value = (value << 8) | u64::from(*buf.get(at + i)?);
    }
    let unknown = value == (1u64 << (7 * len)) - 1;
    Some((value, len, unknown))
}

/// An element id at `at` (its marker bits kept, as ids are written).
fn element_id(buf: &[u8], at: usize) -> Option<(u32, usize)> {
    let first = *buf.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 {
        return None;
    }
    let mut id = 0u32;
    for i in 0..len {
        id = (id << 8) | u32::from(*buf.get(at + i)?);
    }
    Some((id, len))
}

/// An element's header at `at`: id, where its data starts, its data size
/// (`None` for an unknown size).
fn header(buf: &[u8], at: usize) -> Option<(u32, usize, Option<u64>)> {
    let (id, id_len) = element_id(buf, at)?;
    let (size, size_len, unknown) = vint(buf, at + id_len)?;
    Some((id, at + id_len + size_len, (!unknown).then_some(size)))
}

fn uint(data: &[u8]) -> u64 {
    data.iter().fold(0, |v, &b| (v << 8) | u64::from(b))
}

/// The segment's timecode scale (ns per tick) and its duration in ticks
/// when written.
fn info(head: &[u8]) -> Option<(u64, Option<f64>)> {
    // The EBML header, then the segment.
    let (_, data, size) = header(head, 0)?;
    let mut at = data + usize::try_from(size?).ok()?;
    let (id, data, _) = header(head, at)?;
    if id != SEGMENT {
        return None;
    }
    at = data;
    // The segment's first children (SeekHead, Info…), up to the first cluster.
    while let Some((id, data, size)) = header(head, at) {
        if id == CLUSTER {
            break;
        }
        let size = usize::try_from(size?).ok()?;
        if id == INFO {
            let (mut scale, mut duration) = (1_000_000u64, None);
            let mut child = data;
            while child < data + size {
                let (cid, cdata, csize) = header(head, child)?;
                let csize = usize::try_from(csize?).ok()?;
                let value = head.get(cdata..cdata + csize)?;
                match (cid, csize) {
                    (TIMECODE_SCALE, _) => scale = uint(value),
                    (DURATION, 4) => {
                        duration = Some(f64::from(f32::from_be_bytes(value.try_into().ok()?)))
                    }
                    (DURATION, 8) => duration = Some(f64::from_be_bytes(value.try_into().ok()?)),
                    _ => {}
                }
                child = cdata + csize;
            }
            return Some((scale, duration.filter(|d| *d > 0.0)));
        }
        at = data + size;
    }
    None
}

/// Cluster starts tried and elements read, together, looking for the last
/// block. A real last cluster has far fewer blocks (a block's time is 16
/// bits of ms from its cluster's: 32 s of 2.5 ms Opus frames is 13 000;
/// recorders write a cluster every few seconds). Without a bound, a tail
/// of false cluster starts, each followed by the rest of the tail as small
/// elements, was read once per start: minutes for 1 MiB.
const MAX_ELEMENTS: usize = 1 << 14;

/// The time, in ticks, of the last block in the last cluster that `tail`
/// holds from its start.
fn last_block_time(tail: &[u8]) -> Option<u64> {
    let mut search = tail.len();
    let mut budget = MAX_ELEMENTS;
    // The last cluster whose header and timecode parse.
    while let Some(at) = rfind(tail.get(..search)?, &CLUSTER.to_be_bytes()) {
        budget = budget.checked_sub(1)?;
        if let Some(time) = cluster_last_block(tail, at, &mut budget) {
            return Some(time);
        }
        search = at;
    }
    None
}

fn cluster_last_block(buf: &[u8], at: usize, budget: &mut usize) -> Option<u64> {
    let (_, data, size) = header(buf, at)?;
    let end = match size {
        Some(s) => (data + usize::try_from(s).ok()?).min(buf.len()),
        None => buf.len(),
    };
    let (mut base, mut last) = (None, None);
    let mut child = data;
    while child < end {
        *budget = budget.checked_sub(1)?;
        let Some((id, cdata, Some(csize))) = header(buf, child) else {
            break;
        };
        let csize = usize::try_from(csize).ok()?;
        match id {
            CLUSTER_TIMECODE => base = Some(uint(buf.get(cdata..cdata + csize)?)),
            SIMPLE_BLOCK => last = block_time(buf, cdata).or(last),
            BLOCK_GROUP => {
                if let Some((BLOCK, bdata, _)) = header(buf, cdata) {
                    last = block_time(buf, bdata).or(last);
                }
            }
            _ => {}
        }
        if cdata + csize > end {
            break; // cut by the end of the tail
        }
        child = cdata + csize;
    }
    let base = base?;
    Some(base.saturating_add_signed(i64::from(last.unwrap_or(0))))
}

/// A block's time relative to its cluster: after its track number.
fn block_time(buf: &[u8], at: usize) -> Option<i16> {
    let (_, track_len, _) = vint(buf, at)?;
    Some(i16::from_be_bytes(
        buf.get(at + track_len..at + track_len + 2)?
            .try_into()
            .ok()?,
    ))
}

fn mp4(buf: &[u8]) -> Option<u64> {
    let mut search = 0;
    while let Some(found) = find(buf.get(search..)?, b"mvhd") {
        let at = search + found;
        if let Some(ms) = mvhd(buf, at) {
            return Some(ms);
        }
        search = at + 4;
    }
    None
}

/// The movie header whose type is at `at` (its size is the 4 bytes before).
fn mvhd(buf: &[u8], at: usize) -> Option<u64> {
    let size = u32::from_be_bytes(buf.get(at.checked_sub(4)?..at)?.try_into().ok()?);
    let body = at + 4;
    let version = *buf.get(body)?;
    let (timescale, duration, need) = match version {
        0 => (
            u32::from_be_bytes(buf.get(body + 12..body + 16)?.try_into().ok()?),
            u64::from(u32::from_be_bytes(
                buf.get(body + 16..body + 20)?.try_into().ok()?,
            )),
            108,
        ),
        1 => (
            u32::from_be_bytes(buf.get(body + 20..body + 24)?.try_into().ok()?),
            u64::from_be_bytes(buf.get(body + 24..body + 32)?.try_into().ok()?),
            120,
        ),
        _ => return None,
    };
    // A real header has its full size; "mvhd" inside media data rarely does.
    if size != need || timescale == 0 || duration == u64::from(u32::MAX) {
        return None;
    }
    Some(duration.saturating_mul(1000) / u64::from(timescale))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ogg_page(granule: i64, packet: &[u8]) -> Vec<u8> {
        let mut p = b"OggS\x00\x00".to_vec();
        p.extend_from_slice(&granule.to_le_bytes());
        p.extend_from_slice(&[0; 12]); // serial, sequence, checksum
        p.push(1);
        p.push(packet.len() as u8);
        p.extend_from_slice(packet);
        p
    }

    #[test]
    fn an_ogg_opus_note_lasts_its_last_granule_less_pre_skip() {
        let mut head_packet = b"OpusHead\x01\x01".to_vec();
        head_packet.extend_from_slice(&312u16.to_le_bytes());
        head_packet.extend_from_slice(&[0x80, 0xbb, 0, 0, 0, 0, 0]);
        let mut file = ogg_page(0, &head_packet);
        file.extend(ogg_page(48_000, &[1; 40]));
        file.extend(ogg_page(312 + 48_000 * 3 + 24_000, &[2; 40]));
        assert_eq!(duration_ms("audio/ogg", &file, &file), Some(3500));
    }

    #[test]
    fn an_ogg_granule_too_large_to_count_has_no_duration() {
        // Found by fuzzing (fuzz/corpus/media_duration/regression-ogg-granule-overflow):
        // samples × 1000 overflowed (a panic in a debug build, a wrong
        // duration in a release one).
        let mut id = b"\x01vorbis".to_vec();
        id.extend_from_slice(&[0, 0, 0, 0, 1]); // version, channels
        id.extend_from_slice(&44_100u32.to_le_bytes());
        id.extend_from_slice(&[0; 12]);
        let mut file = ogg_page(0, &id);
        file.extend(ogg_page(i64::MAX, &[1; 8]));
        assert_eq!(duration_ms("audio/ogg", &file, &file), None);
        // The same with a granule that fits, and a zero rate.
        let mut file = ogg_page(0, &id);
        file.extend(ogg_page(44_100 * 2, &[1; 8]));
        assert_eq!(duration_ms("audio/ogg", &file, &file), Some(2000));
        let mut zero = id.clone();
        zero[12..16].copy_from_slice(&0u32.to_le_bytes());
        let mut file = ogg_page(0, &zero);
        file.extend(ogg_page(44_100 * 2, &[1; 8]));
        assert_eq!(duration_ms("audio/ogg", &file, &file), None);
    }

    fn el(id: u32, data: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = id
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        // An 8-byte size, as muxers often write.
        out.push(0x01);
        out.extend_from_slice(&(data.len() as u64).to_be_bytes()[1..]);
        out.extend_from_slice(data);
        out
    }

    fn webm(duration: Option<f64>, clusters: &[(u64, &[i16])]) -> Vec<u8> {
        let mut info = el(TIMECODE_SCALE, &1_000_000u32.to_be_bytes());
        if let Some(d) = duration {
            info.extend(el(DURATION, &d.to_be_bytes()));
        }
        let mut segment = el(INFO, &info);
        for (base, blocks) in clusters {
            let mut cluster = el(CLUSTER_TIMECODE, &base.to_be_bytes());
            for rel in *blocks {
                let mut block = vec![0x81];
                block.extend_from_slice(&rel.to_be_bytes());
                block.extend_from_slice(&[0x80, 9, 9, 9]);
                cluster.extend(el(SIMPLE_BLOCK, &block));
            }
            segment.extend(el(CLUSTER, &cluster));
        }
        let mut file = el(0x1a45_dfa3, b"\x42\x82\x84webm");
        // A segment of unknown size, as MediaRecorder writes it.
        file.extend_from_slice(&SEGMENT.to_be_bytes());
        file.extend_from_slice(&[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        file.extend(segment);
        file
    }

    #[test]
    fn a_recorded_webm_lasts_until_its_last_block() {
        // No Duration (a browser's MediaRecorder): the last cluster at
        // 2000 ms, its last block 460 ms in.
        let file = webm(None, &[(0, &[0, 20, 40]), (2000, &[0, 20, 460])]);
        assert_eq!(duration_ms("audio/webm", &file, &file), Some(2460));
        // Only the tail at hand: the cluster is found from the end.
        let tail = &file[file.len() - 100..];
        assert_eq!(duration_ms("audio/webm", &file[..80], tail), Some(2460));
    }

    #[test]
    fn a_tail_of_false_cluster_starts_is_read_in_bounded_time() {
        // Found writing the media_duration fuzz target
        // (fuzz/corpus/media_duration/regression-webm-false-clusters, 4 KiB
        // of it): every 7 bytes an element whose data is a cluster id and an
        // unknown size, so each start's cluster is the rest of the tail.
        // Each start was read to the end: 1 MiB took minutes of a core.
        let head = webm(None, &[(0, &[0])]);
        let mut tail = Vec::new();
        while tail.len() < 1024 * 1024 {
            tail.extend_from_slice(&[0x80, 0x85, 0x1f, 0x43, 0xb6, 0x75, 0xff]);
        }
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(duration_ms("audio/webm", &head, &tail));
        });
        let read = finished.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(read, Ok(None));
        // A real last cluster after such bytes is still found.
        let file = webm(None, &[(0, &[0]), (3000, &[0, 250])]);
        let mut tail = Vec::new();
        while tail.len() < 64 * 1024 {
            tail.extend_from_slice(&[0x80, 0x85, 0x1f, 0x43, 0xb6, 0x75, 0xff]);
        }
        tail.extend_from_slice(&file[file.len() - 100..]);
        assert_eq!(duration_ms("audio/webm", &file, &tail), Some(3250));
    }

    #[test]
    fn a_webm_with_a_duration_says_so() {
        let file = webm(Some(5250.0), &[(0, &[0])]);
        assert_eq!(duration_ms("video/webm", &file, &file), Some(5250));
    }

    #[test]
    fn an_mp4_lasts_its_movie_headers_duration_head_or_tail() {
        let mut mvhd = vec![0, 0, 0, 108];
        mvhd.extend_from_slice(b"mvhd");
        mvhd.extend_from_slice(&[0; 4]); // version 0, flags
        mvhd.extend_from_slice(&[0; 8]); // creation, modification
        mvhd.extend_from_slice(&600u32.to_be_bytes());
        mvhd.extend_from_slice(&7_500u32.to_be_bytes());
        mvhd.resize(108, 0);
        // moov at the end (as many cameras write it).
        let mut file = b"\x00\x00\x00\x18ftypisom".to_vec();
        file.resize(4096, 7);
        file.extend(&mvhd);
        assert_eq!(duration_ms("video/mp4", &file[..64], &file), Some(12_500));
        // A stray "mvhd" in media data, not a header: nothing.
        assert_eq!(duration_ms("video/mp4", b"xxmvhdxxxxxxxx", b"mvhd"), None);
    }

    #[test]
    fn other_types_and_nonsense_have_none() {
        assert_eq!(duration_ms("audio/mpeg", b"ID3", b""), None);
        assert_eq!(duration_ms("audio/webm", b"\x1a\x45", b"\x1f\x43"), None);
        assert_eq!(duration_ms("audio/ogg", b"OggS", b"OggS"), None);
    }
}
