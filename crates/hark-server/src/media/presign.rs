//! Presigned URLs for a bucket with `[media.s3] direct = true`: a client
//! puts an upload's bytes into the bucket, or fetches a file from it,
//! without the bytes passing through the server.
//!
//! SigV4 query-string signing by `aws-sigv4` (AWS's own implementation):
//! `object_store`'s signer signs the host alone, so a URL from it would
//! take any number of bytes and could not set a download's
//! `Content-Disposition`. Here a `PUT` signs its `content-length` (and
//! the file's SHA-256, as `x-amz-checksum-sha256`, when the client gave
//! it), so the bucket refuses other bytes; a `GET` signs the type and
//! disposition the bucket answers with.

use crate::config::S3;
use anyhow::Context;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use object_store::path::Path;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

/// SigV4's URI encoding: RFC 3986's unreserved characters stay, all else
/// is `%XX` (a space is `%20`, never `+`).
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Signs URLs for the configured bucket.
pub(crate) struct Presigner {
    /// The bucket's URL, without a trailing slash.
    base: String,
    /// Key prefix, without slashes at its ends (may be empty).
    prefix: String,
    region: String,
    key_id: String,
    secret: SecretString,
    token: Option<SecretString>,
    /// How long a URL works.
    pub(crate) lifetime: Duration,
}

/// A signed request: where, and the headers it must carry exactly.
pub(crate) struct Signed {
    pub(crate) url: String,
    pub(crate) headers: BTreeMap<String, String>,
}

impl Presigner {
    /// For a bucket with `direct` set; `None` otherwise.
    pub(crate) fn new(s3: &S3) -> anyhow::Result<Option<Self>> {
        if !s3.direct {
            return Ok(None);
        }
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let key_id = s3
            .access_key_id
            .clone()
            .or_else(|| env("AWS_ACCESS_KEY_ID"))
            .context("[media.s3] direct needs an access key (access_key_id or AWS_ACCESS_KEY_ID) to sign URLs with")?;
        let secret = match &s3.secret_access_key {
            Some(secret) => secret.clone(),
            None => SecretString::from(env("AWS_SECRET_ACCESS_KEY").context(
                "[media.s3] direct needs a secret key (secret_access_key or AWS_SECRET_ACCESS_KEY)",
            )?),
        };
        let base = match &s3.endpoint {
            Some(endpoint) => {
                let endpoint = endpoint.trim_end_matches('/');
                if s3.path_style {
                    format!("{endpoint}/{}", encode(&s3.bucket))
                } else {
                    let (scheme, host) = endpoint
                        .split_once("://")
                        .context("[media.s3] endpoint must be a URL")?;
                    format!("{scheme}://{}.{host}", s3.bucket)
                }
            }
            None if s3.path_style => {
                format!(
                    "https://s3.{}.amazonaws.com/{}",
                    s3.region,
                    encode(&s3.bucket)
                )
            }
            None => format!("https://{}.s3.{}.amazonaws.com", s3.bucket, s3.region),
        };
        Ok(Some(Presigner {
            base,
            prefix: s3.prefix.trim_matches('/').to_owned(),
            region: s3.region.clone(),
            key_id,
            secret,
            token: env("AWS_SESSION_TOKEN").map(SecretString::from),
            lifetime: Duration::from_secs(s3.presign_secs.max(1)),
        }))
    }

    /// The bucket's origin (`scheme://host[:port]`), which a browser must
    /// be allowed to reach.
    pub(crate) fn origin(&self) -> String {
        match self.base.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split('/').next().unwrap_or(rest);
                format!("{scheme}://{host}")
            }
            None => self.base.clone(),
        }
    }

    /// The URL of the object at `path`, unsigned.
    fn object_url(&self, path: &Path) -> String {
        let mut url = self.base.clone();
        for part in self.prefix.split('/').filter(|p| !p.is_empty()) {
            url.push('/');
            url.push_str(&encode(part));
        }
        for part in path.parts() {
            url.push('/');
            url.push_str(&encode(part.as_ref()));
        }
        url
    }

    /// A `PUT` of exactly `size` bytes to `path` (and, with `sha256`,
    /// exactly those bytes: base64 of the digest).
    pub(crate) fn put(
        &self,
        path: &Path,
        size: u64,
        sha256: Option<&str>,
    ) -> anyhow::Result<Signed> {
        let mut headers = BTreeMap::new();
        headers.insert("content-length".to_owned(), size.to_string());
        if let Some(sum) = sha256 {
            headers.insert("x-amz-checksum-sha256".to_owned(), sum.to_owned());
        }
        let url = self.sign("PUT", self.object_url(path), &headers, &[])?;
        Ok(Signed { url, headers })
    }

    /// A `GET` of `path` that the bucket answers with `content_type` and
    /// `disposition`.
    pub(crate) fn get(
        &self,
        path: &Path,
        content_type: &str,
        disposition: &str,
    ) -> anyhow::Result<String> {
        self.sign(
            "GET",
            self.object_url(path),
            &BTreeMap::new(),
            &[
                ("response-content-disposition", disposition),
                ("response-content-type", content_type),
            ],
        )
    }

    fn sign(
        &self,
        method: &str,
        mut url: String,
        headers: &BTreeMap<String, String>,
        query: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(self.lifetime);
        // S3 signs the path as sent: not encoded twice, not normalised.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = Credentials::new(
            &self.key_id,
            self.secret.expose_secret(),
            self.token.as_ref().map(|t| t.expose_secret().to_owned()),
            None,
            "hark",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let request = SignableRequest::new(
            method,
            &url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::UnsignedPayload,
        )?;
        let (instructions, _signature) = sign(request, &params)?.into_parts();
        for (k, v) in instructions.params() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&encode(k));
            url.push('=');
            url.push_str(&encode(v));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(endpoint: Option<&str>, path_style: bool) -> S3 {
        toml::from_str::<S3>(&format!(
            "bucket = \"my bucket\"\nprefix = \"/team a/\"\npath_style = {path_style}\ndirect = true\naccess_key_id = \"AK\"\nsecret_access_key = \"SK\"\n{}",
            endpoint.map(|e| format!("endpoint = \"{e}\"")).unwrap_or_default()
        ))
        .unwrap()
    }

    #[test]
    fn object_urls_follow_the_addressing_style_and_encode_each_part() {
        let key = Path::from("incoming/ab/file");
        let p = Presigner::new(&s3(Some("http://127.0.0.1:9000/"), true))
            .unwrap()
            .unwrap();
        assert_eq!(
            p.object_url(&key),
            "http://127.0.0.1:9000/my%20bucket/team%20a/incoming/ab/file"
        );
        assert_eq!(p.origin(), "http://127.0.0.1:9000");
        let aws = Presigner::new(&s3(None, true)).unwrap().unwrap();
        assert!(aws
            .object_url(&key)
            .starts_with("https://s3.us-east-1.amazonaws.com/my%20bucket/"));
    }

    #[test]
    fn a_put_signs_its_length_and_checksum_and_a_get_its_headers() {
        let p = Presigner::new(&s3(Some("http://127.0.0.1:9000"), true))
            .unwrap()
            .unwrap();
        let put = p
            .put(&Path::from("incoming/ab/file"), 42, Some("c3VtCg=="))
            .unwrap();
        assert!(
            put.url
                .contains("X-Amz-SignedHeaders=content-length%3Bhost%3Bx-amz-checksum-sha256"),
            "{}",
            put.url
        );
        assert_eq!(put.headers["content-length"], "42");
        let get = p
            .get(
                &Path::from("files/ab"),
                "image/png",
                "inline; filename=\"a b.png\"",
            )
            .unwrap();
        assert!(
            get.contains("response-content-disposition=inline%3B%20filename%3D%22a%20b.png%22"),
            "{get}"
        );
        assert!(get.contains("X-Amz-Expires=900"), "{get}");
    }

    #[test]
    fn only_a_direct_bucket_signs() {
        let mut conf = s3(None, true);
        conf.direct = false;
        assert!(Presigner::new(&conf).unwrap().is_none());
    }
}
