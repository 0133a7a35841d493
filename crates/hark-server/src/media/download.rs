//! `GET /v1/media/{id}`: a file to whoever may see it, whole or a byte
//! range of it, with headers that keep a browser from running it; and
//! `GET /v1/media/{id}/thumbnail`, an image's thumbnail, to the same people.

use super::MediaFiles;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hark_proto::{ErrorCode, MediaId, MediaKind, MediaRef, MediaUrl};
use hark_store::AuthedDevice;
use object_store::{GetOptions, GetRange, GetResultPayload};

/// Served with every file: nothing in it runs, nothing is guessed.
const CSP: &str = "default-src 'none'; sandbox";

/// The file `id` if `who` may download it: its uploader, or a current
/// member of a chat holding a message with it, sent after they joined.
/// Any other answers as a file that does not exist.
async fn allowed(state: &AppState, who: &AuthedDevice, id: &MediaId) -> ApiResult<MediaRef> {
    let not_found = || ApiError::new(ErrorCode::NotFound, "no such file");
    if !id.is_valid() {
        return Err(not_found());
    }
    let record = state.store.media(id).await?.ok_or_else(not_found)?;
    if !state.store.may_download(who.user.id, id).await? {
        return Err(not_found());
    }
    Ok(record.reference)
}

/// The headers every answer of a file or thumbnail carries.
pub(crate) fn common_headers(etag: &str, mime: &str) -> HeaderMap {
    let mut out = HeaderMap::new();
    set(&mut out, header::ETAG, etag);
    set(
        &mut out,
        header::CACHE_CONTROL,
        "private, max-age=31536000, immutable",
    );
    set(&mut out, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut out, header::CONTENT_SECURITY_POLICY, CSP);
    set(&mut out, header::CONTENT_TYPE, mime);
    out
}

/// Whether the client already holds `etag` (`If-None-Match`).
pub(crate) fn unchanged(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

pub(crate) async fn thumbnail(
    state: &AppState,
    who: &AuthedDevice,
    id: MediaId,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let file = allowed(state, who, &id).await?;
    let Some(thumbnail) = &file.thumbnail else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this file has no thumbnail",
        ));
    };
    let etag = format!("\"{}-thumbnail\"", file.sha256);
    let mut out = common_headers(&etag, &thumbnail.mime);
    set(&mut out, header::CONTENT_DISPOSITION, "inline");
    if unchanged(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let bytes = state
        .media
        .store
        .get(&MediaFiles::thumbnail_path(&file.id))
        .await
        .map_err(ApiError::internal)?
        .bytes()
        .await
        .map_err(ApiError::internal)?;
    set(&mut out, header::CONTENT_LENGTH, &bytes.len().to_string());
    Ok((StatusCode::OK, out, Body::from(bytes)).into_response())
}

/// Where `who` may fetch file `id` straight from the bucket for a while:
/// a presigned URL that answers with the same type and disposition as a
/// download here (the bucket's origin is not the server's, so a file
/// opened there reaches nothing of Hark's). Only for a bucket with
/// `direct` set; otherwise `404`, and the file is downloaded here.
pub(crate) async fn url(state: &AppState, who: &AuthedDevice, id: MediaId) -> ApiResult<MediaUrl> {
    let file = allowed(state, who, &id).await?;
    let Some(signer) = &state.media.presigner else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this server serves its files itself: GET /v1/media/{id}",
        ));
    };
    let url = signer
        .get(
            &MediaFiles::path(&file.id),
            served_type(&file),
            &disposition(&file),
        )
        .map_err(ApiError::internal)?;
    let lifetime = i64::try_from(signer.lifetime.as_millis()).unwrap_or(i64::MAX);
    Ok(MediaUrl {
        url,
        expires_at: crate::now_ms().saturating_add(lifetime),
    })
}

pub(crate) async fn download(
    state: &AppState,
    who: &AuthedDevice,
    id: MediaId,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let file = allowed(state, who, &id).await?;
    let etag = format!("\"{}\"", file.sha256);
    let mut out = common_headers(&etag, served_type(&file));
    set(&mut out, header::ACCEPT_RANGES, "bytes");
    set(&mut out, header::CONTENT_DISPOSITION, &disposition(&file));
    if unchanged(headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => match parse_range(v, file.size) {
            Wanted::Whole => None,
            Wanted::Part(start, end) => Some((start, end)),
            Wanted::Unsatisfiable => {
                set(
                    &mut out,
                    header::CONTENT_RANGE,
                    &format!("bytes */{}", file.size),
                );
                let error = ApiError::new(
                    ErrorCode::RangeNotSatisfiable,
                    format!("the file has {} bytes", file.size),
                );
                return Ok((out, error).into_response());
            }
        },
    };
    let options = GetOptions {
        range: range.map(|(start, end)| GetRange::Bounded(start..end + 1)),
        ..GetOptions::default()
    };
    let got = state
        .media
        .store
        .get_opts(&MediaFiles::path(&file.id), options)
        .await
        .map_err(ApiError::internal)?;
    let body = match got.payload {
        // A local file: read in large chunks (object_store's own stream
        // reads 8 KiB at a time, a tenth of the throughput measured).
        GetResultPayload::File(file, _) => file_body(file, got.range.start, got.range.end),
        GetResultPayload::Stream(stream) => read_ahead(stream),
    };
    let (status, length) = match range {
        Some((start, end)) => {
            set(
                &mut out,
                header::CONTENT_RANGE,
                &format!("bytes {start}-{end}/{}", file.size),
            );
            (StatusCode::PARTIAL_CONTENT, end - start + 1)
        }
        None => (StatusCode::OK, file.size),
    };
    set(&mut out, header::CONTENT_LENGTH, &length.to_string());
    Ok((status, out, body).into_response())
}

/// Chunks of a bucket's answer held ahead of the client, each up to
/// [`READ_CHUNK`]: what one download from a bucket holds in memory.
const AHEAD: usize = 8;

/// A bucket's answer, read ahead of the client by a task of its own in
/// chunks of [`READ_CHUNK`], so fetching from the bucket and sending to the
/// client overlap (passed through as it came, chunk by chunk, a download
/// ran at a fifth of a raw GET: docs/benchmarks.md, "Media in S3").
fn read_ahead(
    mut stream: futures_util::stream::BoxStream<'static, object_store::Result<bytes::Bytes>>,
) -> Body {
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(AHEAD);
    tokio::spawn(async move {
        let mut chunk = bytes::BytesMut::new();
        while let Some(next) = stream.next().await {
            match next {
                Ok(bytes) => {
                    chunk.extend_from_slice(&bytes);
                    if chunk.len() >= READ_CHUNK
                        && tx.send(Ok(chunk.split().freeze())).await.is_err()
                    {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = tx.send(Ok(chunk.freeze())).await;
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

/// Bytes read from a local file per chunk of a download.
const READ_CHUNK: usize = 256 * 1024;

/// Bytes `start..end` of `file`, streamed.
fn file_body(file: std::fs::File, start: u64, end: u64) -> Body {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let file = tokio::fs::File::from_std(file);
    let chunks = futures_util::stream::try_unfold(
        (file, start, false),
        move |(mut file, at, seeked)| async move {
            if at >= end {
                return Ok::<_, std::io::Error>(None);
            }
            if !seeked {
                file.seek(std::io::SeekFrom::Start(at)).await?;
            }
            let want = usize::try_from(end - at)
                .unwrap_or(READ_CHUNK)
                .min(READ_CHUNK);
            let mut buf = vec![0u8; want];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file is shorter than its row says",
                ));
            }
            buf.truncate(n);
            Ok(Some((bytes::Bytes::from(buf), (file, at + n as u64, true))))
        },
    );
    Body::from_stream(chunks)
}

fn set(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// Pictures, video and sound as what they are; any other file as bytes
/// to save, whatever it looks like (an HTML or SVG file never renders).
fn served_type(file: &MediaRef) -> &str {
    match file.kind {
        MediaKind::File => "application/octet-stream",
        _ => &file.mime,
    }
}

/// `inline` for what a browser shows, `attachment` for other files, with
/// the name in ASCII and in full (RFC 6266).
fn disposition(file: &MediaRef) -> String {
    let how = match file.kind {
        MediaKind::File => "attachment",
        _ => "inline",
    };
    let Some(name) = &file.name else {
        return how.to_owned();
    };
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{how}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Whole,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range of a file of `size` bytes. Several ranges, or one
/// that does not parse, get the whole file (RFC 9110 lets a server ignore
/// `Range`).
fn parse_range(value: &str, size: u64) -> Wanted {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = match (first.parse::<u64>(), last.parse::<u64>()) {
        // bytes=-N: the last N bytes.
        (Err(_), Ok(n)) if first.is_empty() => {
            if n == 0 {
                return Wanted::Unsatisfiable;
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (Ok(start), Err(_)) if last.is_empty() => (start, size.saturating_sub(1)),
        (Ok(start), Ok(end)) if end >= start => (start, end.min(size.saturating_sub(1))),
        _ => return Wanted::Whole,
    };
    if start >= size {
        return Wanted::Unsatisfiable;
    }
    Wanted::Part(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        assert_eq!(parse_range("bytes=0-9", 100), Wanted::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Wanted::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Wanted::Part(90, 99));
        assert_eq!(parse_range("bytes=95-200", 100), Wanted::Part(95, 99));
        assert_eq!(parse_range("bytes=-500", 100), Wanted::Part(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), Wanted::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Wanted::Whole);
        assert_eq!(parse_range("bytes=9-3", 100), Wanted::Whole);
        assert_eq!(parse_range("items=0-1", 100), Wanted::Whole);
    }

    #[test]
    fn a_hostile_name_stays_inside_its_quotes() {
        let file = MediaRef {
            id: MediaId("0".repeat(32)),
            kind: MediaKind::File,
            mime: "text/html".into(),
            size: 1,
            sha256: String::new(),
            name: Some("a\"; filename=evil.html é.txt".into()),
            width: None,
            height: None,
            thumbnail: None,
            duration_ms: None,
        };
        assert_eq!(
            disposition(&file),
            "attachment; filename=\"a_; filename=evil.html _.txt\"; \
             filename*=UTF-8''a%22%3B%20filename%3Devil.html%20%C3%A9.txt"
        );
        assert_eq!(served_type(&file), "application/octet-stream");
    }
}
