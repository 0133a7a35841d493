//! `media`: one large file (default 100 MiB) uploaded through
//! `POST /v1/media` and downloaded back, each timed beside copying the
//! same file on the same disk (the same-run baseline); then N uploads of
//! it at once (default 20), watching the server's RSS: uploads stream, so
//! it must stay flat rather than grow with the bytes in flight.

use crate::report::{Figure, Report};
use crate::servers::{rss_kib, Servers};
use crate::{setup, Common};
use anyhow::Context;
use futures_util::StreamExt;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct Params {
    #[command(flatten)]
    #[serde(skip)]
    pub common: Common,
    /// Size of the file, MiB.
    #[arg(long, default_value_t = 100)]
    pub size_mib: u64,
    /// Uploads at once in the memory run.
    #[arg(long, default_value_t = 20)]
    pub parallel: usize,
    /// Keep the files in the S3 bucket scripts/s3.sh runs (its settings,
    /// `HARK_TEST_S3_*`, in the environment: `export $(scripts/s3.sh env)`)
    /// and measure a raw PUT and GET of the same file there as the baseline.
    #[arg(long)]
    pub s3: bool,
    /// With `--s3`: the bucket is `direct`, and the same file also goes
    /// straight into the bucket (the SDK's resumable upload) and comes down
    /// from it, beside going up in pieces through the server (always
    /// measured); the server's CPU and RSS growth for each.
    #[arg(long, requires = "s3")]
    pub direct: bool,
    /// Also keep the 12-megapixel JPEG of the thumbnail run here (for
    /// `KIND=image FILE=… scripts/bench-media-latency.sh`).
    #[arg(long)]
    pub photo_out: Option<PathBuf>,
}

const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(p: Params) -> anyhow::Result<Report> {
    let mut report = Report::new("media", &p.common, &p);
    // The upload path itself, unpaced: what the node-wide pace does for
    // messages is scripts/bench-media-latency.sh's figure.
    let mut settings = format!(
        "media.max_bytes = {}\nmedia.upload_bytes_per_second = 0\n",
        (p.size_mib + 1) * 1024 * 1024
    );
    let tag = setup::run_tag();
    let s3 = if p.s3 {
        Some(S3::from_env(&tag)?)
    } else {
        None
    };
    if let Some(s3) = &s3 {
        settings.push_str(&s3.settings());
        if p.direct {
            settings.push_str("media.s3.direct = true\n");
        }
    }
    let servers = Servers::start_with(&p.common, 1, &[], &settings).await?;
    let base = servers.urls[0].clone();
    let users = setup::accounts(&base, &tag, "m", 1).await?;
    let token = users[0].token.clone();
    let work = tempfile::tempdir_in(&p.common.work_dir)?;
    let file = work.path().join("file.bin");
    write_file(&file, p.size_mib * 1024 * 1024).await?;
    let bytes = p.size_mib as f64 * MIB;
    let http = reqwest::Client::new();

    // Baseline: the same bytes copied on the same disk, or put into and
    // got from the same bucket.
    let copy = work.path().join("copy.bin");
    let (baseline, up_base_secs, down_base_secs) = match &s3 {
        None => {
            let started = Instant::now();
            tokio::fs::copy(&file, &copy).await?;
            let cp_secs = started.elapsed().as_secs_f64();
            tokio::fs::remove_file(&copy).await?;
            ("cp", cp_secs, cp_secs)
        }
        Some(s3) => {
            let (put, get) = s3.raw_put_and_get(&file).await?;
            ("raw S3", put, get)
        }
    };

    let pid = servers.pids.first().copied();
    let cpu = || super::cpu_of(&servers.pids);
    let (c0, started) = (cpu(), Instant::now());
    let id = upload(&http, &base, &token, &file).await?;
    let (up_secs, c1) = (started.elapsed().as_secs_f64(), cpu());
    let started = Instant::now();
    let got = download(&http, &base, &token, &id, &copy).await?;
    let (down_secs, c2) = (started.elapsed().as_secs_f64(), cpu());
    anyhow::ensure!(
        got == p.size_mib * 1024 * 1024,
        "downloaded {got} bytes of {}",
        p.size_mib * 1024 * 1024
    );
    report.figure(
        Figure::new("upload throughput", "MiB/s", bytes / MIB / up_secs)
            .vs(baseline, Some(bytes / MIB / up_base_secs)),
    );
    report.figure(
        Figure::new("download throughput", "MiB/s", bytes / MIB / down_secs)
            .vs(baseline, Some(bytes / MIB / down_base_secs)),
    );
    if let (Some(a), Some(b), Some(c)) = (c0, c1, c2) {
        report.figure(Figure::new("server CPU per upload", "s", b - a));
        report.figure(Figure::new("server CPU per download", "s", c - b));
    }

    resumable(
        &mut report,
        &base,
        &token,
        &file,
        &copy,
        pid,
        &cpu,
        p.direct,
    )
    .await?;

    // N at once: the server's RSS, sampled every 20 ms.
    let sampler = RssPeak::start(pid);
    let started = Instant::now();
    let uploads = futures_util::future::join_all(
        (0..p.parallel).map(|_| upload(&http, &base, &token, &file)),
    )
    .await;
    let all_secs = started.elapsed().as_secs_f64();
    let (before, peak) = sampler.stop().await;
    let ok = uploads.iter().filter(|u| u.is_ok()).count();
    if let Some(e) = uploads.into_iter().find_map(Result::err) {
        report.note(format!("a parallel upload failed: {e:#}"));
    }
    report.check(
        "every parallel upload stored",
        ok == p.parallel,
        format!("{ok} of {}", p.parallel),
    );
    report.figure(Figure::new(
        &format!("{} uploads at once: total throughput", p.parallel),
        "MiB/s",
        bytes * ok as f64 / MIB / all_secs,
    ));
    if let (Some(before), Some(peak)) = (before, peak) {
        report.figure(
            Figure::new(
                &format!("server RSS growth during {} uploads at once", p.parallel),
                "MiB",
                (peak.saturating_sub(before)) as f64 / 1024.0,
            )
            .target("flat: far below the bytes in flight"),
        );
        report.figure(Figure::new(
            "server RSS before",
            "MiB",
            before as f64 / 1024.0,
        ));
    }
    let photo = thumbnails(&mut report, &http, &base, &token, work.path(), &cpu).await?;
    if let Some(out) = &p.photo_out {
        tokio::fs::copy(&photo, out).await?;
    }
    report.count("file bytes", p.size_mib * 1024 * 1024);
    report.note(if s3.is_some() {
        "Files in S3. Baseline: the same file put into the same bucket with object_store \
         (5 MiB parts, as Hark writes them) and got back, from this process."
    } else {
        "Baseline: tokio::fs::copy of the same file in the same directory (the upload and \
         download each write the whole file once, as the copy does)."
    });
    servers.stop().await;
    Ok(report)
}

/// The same file through the SDK's resumable upload, in pieces through
/// the server and (with `direct`) put straight into the bucket and down
/// from it: what each costs the server (CPU seconds, RSS growth) and takes.
#[allow(clippy::too_many_arguments)]
async fn resumable(
    report: &mut Report,
    base: &str,
    token: &str,
    file: &Path,
    copy: &Path,
    pid: Option<u32>,
    cpu: &dyn Fn() -> Option<f64>,
    direct: bool,
) -> anyhow::Result<()> {
    let api = hark_sdk::Api::new(base)?.with_token(token);
    let mut id = None;
    let ways: &[(&str, bool)] = if direct {
        &[
            ("in pieces through the server", false),
            ("straight into the bucket", true),
        ]
    } else {
        &[("in pieces through the server", false)]
    };
    for &(what, direct) in ways {
        let options = hark_sdk::UploadOptions {
            direct,
            ..Default::default()
        };
        let (took, media) = measured(report, &format!("upload {what}"), pid, cpu, async {
            Ok(api
                .upload_resumable(file, hark_proto::MediaKind::File, &options, |_, _| {})
                .await?)
        })
        .await?;
        report.figure(Figure::new(&format!("upload {what}: time"), "s", took));
        id = Some(media.id);
    }
    let id = id.context("no upload")?;
    if !direct {
        return Ok(());
    }
    anyhow::ensure!(
        api.media_url(&id).await?.is_some(),
        "the server gave no URL"
    );
    let (took, got) = measured(report, "download from the bucket", pid, cpu, async {
        Ok(api.download_file(&id, copy, |_, _| {}).await?)
    })
    .await?;
    anyhow::ensure!(
        got == tokio::fs::metadata(file).await?.len(),
        "downloaded {got} bytes"
    );
    report.figure(Figure::new("download from the bucket: time", "s", took));
    tokio::fs::remove_file(copy).await?;
    Ok(())
}

/// Runs `work`, reporting the server's CPU seconds and RSS growth (peak,
/// sampled every 20 ms) during it as `<what>: …`; its seconds and result.
async fn measured<T>(
    report: &mut Report,
    what: &str,
    pid: Option<u32>,
    cpu: &dyn Fn() -> Option<f64>,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<(f64, T)> {
    let sampler = RssPeak::start(pid);
    let (c0, started) = (cpu(), Instant::now());
    let out = work.await;
    let (took, c1) = (started.elapsed().as_secs_f64(), cpu());
    let (before, peak) = sampler.stop().await;
    let out = out?;
    if let (Some(a), Some(b)) = (c0, c1) {
        report.figure(Figure::new(&format!("{what}: server CPU"), "s", b - a));
    }
    if let (Some(before), Some(peak)) = (before, peak) {
        report.figure(Figure::new(
            &format!("{what}: server RSS growth"),
            "MiB",
            peak.saturating_sub(before) as f64 / 1024.0,
        ));
    }
    Ok((took, out))
}

/// The server's RSS, sampled every 20 ms from `start` to `stop`.
struct RssPeak {
    before: Option<u64>,
    peak: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
    sampler: Option<tokio::task::JoinHandle<()>>,
}

impl RssPeak {
    fn start(pid: Option<u32>) -> Self {
        let before = pid.and_then(rss_kib);
        let peak = Arc::new(AtomicU64::new(before.unwrap_or(0)));
        let running = Arc::new(AtomicBool::new(true));
        let sampler = pid.map(|pid| {
            let (peak, running) = (peak.clone(), running.clone());
            tokio::spawn(async move {
                while running.load(Relaxed) {
                    if let Some(kib) = rss_kib(pid) {
                        peak.fetch_max(kib, Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        });
        RssPeak {
            before,
            peak,
            running,
            sampler,
        }
    }

    /// KiB before and at the peak (none without a server pid).
    async fn stop(self) -> (Option<u64>, Option<u64>) {
        self.running.store(false, Relaxed);
        if let Some(s) = self.sampler {
            let _ = s.await;
        }
        (self.before, self.before.map(|_| self.peak.load(Relaxed)))
    }
}

/// The bucket of `--s3`.
struct S3 {
    endpoint: String,
    bucket: String,
    access_key: String,
    secret_key: String,
    prefix: String,
}

impl S3 {
    fn from_env(tag: &str) -> anyhow::Result<Self> {
        let var = |name: &str| {
            std::env::var(name).with_context(|| {
                format!("--s3 needs {name}: run scripts/s3.sh up and export $(scripts/s3.sh env)")
            })
        };
        Ok(S3 {
            endpoint: var("HARK_TEST_S3_ENDPOINT")?,
            bucket: var("HARK_TEST_S3_BUCKET")?,
            access_key: var("HARK_TEST_S3_ACCESS_KEY")?,
            secret_key: var("HARK_TEST_S3_SECRET_KEY")?,
            prefix: format!("bench-{tag}"),
        })
    }

    /// The server's `[media.s3]`, as dotted top-level keys.
    fn settings(&self) -> String {
        format!(
            "media.s3.bucket = {:?}\nmedia.s3.endpoint = {:?}\nmedia.s3.access_key_id = {:?}\n\
             media.s3.secret_access_key = {:?}\nmedia.s3.prefix = {:?}\n",
            self.bucket, self.endpoint, self.access_key, self.secret_key, self.prefix
        )
    }

    /// Seconds to put `file` into the bucket (5 MiB parts) and to get it back.
    async fn raw_put_and_get(&self, file: &Path) -> anyhow::Result<(f64, f64)> {
        use object_store::{ObjectStore, WriteMultipart};
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_region("us-east-1")
            .with_bucket_name(&self.bucket)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .build()?;
        let key = object_store::path::Path::from(format!("{}-baseline/file", self.prefix));
        let started = Instant::now();
        let mut writer =
            WriteMultipart::new_with_chunk_size(store.put_multipart(&key).await?, 5 * 1024 * 1024);
        let mut f = tokio::fs::File::open(file).await?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            writer.wait_for_capacity(1).await?;
            writer.write(buf.get(..n).unwrap_or_default());
        }
        writer.finish().await?;
        let put = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut stream = store.get(&key).await?.into_stream();
        let mut got = 0usize;
        while let Some(chunk) = stream.next().await {
            got += chunk?.len();
        }
        let get = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            got as u64 == f.metadata().await?.len(),
            "raw S3 get: {got} bytes"
        );
        store.delete(&key).await?;
        Ok((put, get))
    }
}

/// Uploads of one 12-megapixel JPEG, as an image (the server decodes it
/// and draws its thumbnail before answering) and as a file (stored only),
/// interleaved: the difference is what the thumbnail costs.
async fn thumbnails(
    report: &mut Report,
    http: &reqwest::Client,
    base: &str,
    token: &str,
    dir: &Path,
    cpu: &impl Fn() -> Option<f64>,
) -> anyhow::Result<PathBuf> {
    const ROUNDS: usize = 7;
    let photo = dir.join("photo.jpg");
    let bytes = tokio::task::spawn_blocking(photo_jpeg).await??;
    let size = bytes.len();
    tokio::fs::write(&photo, bytes).await?;
    let (mut as_image, mut as_file) = (Vec::new(), Vec::new());
    let (mut cpu_image, mut cpu_file) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        for (kind, times, cpu_sum) in [
            ("image", &mut as_image, &mut cpu_image),
            ("file", &mut as_file, &mut cpu_file),
        ] {
            let (c0, started) = (cpu(), Instant::now());
            upload_as(http, base, token, &photo, kind).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if let (Some(a), Some(b)) = (c0, cpu()) {
                *cpu_sum += b - a;
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (image_ms, file_ms) = (median(&mut as_image), median(&mut as_file));
    report.figure(
        Figure::new(
            "12 MP JPEG uploaded as an image (with thumbnail), median",
            "ms",
            image_ms,
        )
        .vs("as a file", Some(file_ms)),
    );
    report.figure(Figure::new(
        "thumbnail of a 12 MP JPEG: added upload time, median",
        "ms",
        image_ms - file_ms,
    ));
    report.figure(
        Figure::new(
            "server CPU per 12 MP JPEG upload as an image",
            "s",
            cpu_image / ROUNDS as f64,
        )
        .vs("as a file", Some(cpu_file / ROUNDS as f64)),
    );
    report.count("12 MP JPEG bytes", size as u64);
    Ok(photo)
}

/// A 4000 × 3000 JPEG (quality 90) with detail enough to cost what a
/// photo costs to decode: gradients with noise.
fn photo_jpeg() -> anyhow::Result<Vec<u8>> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let img = image::RgbImage::from_fn(4000, 3000, |x, y| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let noise = (state & 0x1f) as u32;
        image::Rgb([
            ((x / 16 + noise) % 256) as u8,
            ((y / 12 + noise) % 256) as u8,
            (((x + y) / 28 + noise) % 256) as u8,
        ])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&img)?;
    Ok(out)
}

/// A file of `len` bytes that does not compress (a simple generator).
async fn write_file(path: &Path, len: u64) -> anyhow::Result<()> {
    let mut f = tokio::fs::File::create(path).await?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut buf = vec![0u8; 1024 * 1024];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(bytes.get(..chunk.len()).unwrap_or(&bytes));
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(buf.get(..n).unwrap_or_default()).await?;
        left -= n as u64;
    }
    f.flush().await?;
    Ok(())
}

async fn upload(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &PathBuf,
) -> anyhow::Result<String> {
    upload_as(http, base, token, path, "file").await
}

async fn upload_as(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    path: &PathBuf,
    kind: &str,
) -> anyhow::Result<String> {
    let file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let body = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let res = http
        .post(format!("{base}/v1/media?kind={kind}&name=bench.bin"))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "upload: {}", res.text().await?);
    let media: hark_proto::MediaRef = res.json().await?;
    Ok(media.id.0)
}

async fn download(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    id: &str,
    dest: &Path,
) -> anyhow::Result<u64> {
    let res = http
        .get(format!("{base}/v1/media/{id}"))
        .bearer_auth(token)
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "download: {}", res.status());
    let mut out = tokio::fs::File::create(dest)
        .await
        .with_context(|| format!("creating {}", dest.display()))?;
    let mut stream = res.bytes_stream();
    let mut got = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        out.write_all(&chunk).await?;
        got += chunk.len() as u64;
    }
    out.flush().await?;
    Ok(got)
}
