//! A person's profile beyond their name (docs/protocol.md "Profile"): the
//! caller's "about" line and photo and who sees them, and what the caller
//! may see of someone else's.
//!
//! Refusals come back as [`crate::Error::Server`] with the server's code:
//! `invalid_field` for an about line that is too long (over 140
//! characters) or not one line, or a photo that is not an image
//! (`too_large` for one too large to decode); `not_found` for a photo
//! upload that is not the caller's, and for a photo someone has not set
//! or does not show the caller (the two look the same).

use crate::api::Api;
use crate::Result;
use hark_proto::{
    MediaId, MediaKind, MyProfile, PhotoSize, Profile, ProfileUpdate, SetPhotoRequest, UserId,
};
use reqwest::Method;
use std::path::Path;

/// A profile photo as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    /// `image/jpeg` or `image/png`.
    pub mime: String,
    /// The image, a square of [`PhotoSize::side`] pixels at most.
    pub bytes: Vec<u8>,
}

impl Photo {
    /// The file extension its type suggests: `png` or `jpg`.
    pub fn extension(&self) -> &'static str {
        match self.mime.as_str() {
            "image/png" => "png",
            "image/gif" => "gif",
            "image/webp" => "webp",
            _ => "jpg",
        }
    }
}

impl Api {
    /// `GET /v1/me/profile`: the caller's about line, whether they have a
    /// photo, and who sees each.
    pub async fn my_profile(&self) -> Result<MyProfile> {
        self.call(Method::GET, "/v1/me/profile", None::<&()>, true)
            .await
    }

    /// `PATCH /v1/me/profile`: changes the fields `change` sets (at least
    /// one; `about: Some("")` clears the about line). Not to be confused
    /// with [`Api::update_profile`], which changes the display name.
    pub async fn update_my_profile(&self, change: &ProfileUpdate) -> Result<MyProfile> {
        self.call(Method::PATCH, "/v1/me/profile", Some(change), true)
            .await
    }

    /// `PUT /v1/me/photo`: the image the caller uploaded as `media_id`
    /// (see [`Api::upload_file`]) becomes their photo, cut by the server to
    /// the square at its centre.
    pub async fn set_photo(&self, media_id: &MediaId) -> Result<MyProfile> {
        let body = SetPhotoRequest {
            media_id: media_id.clone(),
        };
        self.call(Method::PUT, "/v1/me/photo", Some(&body), true)
            .await
    }

    /// Uploads the image file at `path` and makes it the caller's photo
    /// ([`Api::upload_file`], then [`Api::set_photo`]). A file that is not
    /// an image is refused by the upload with `invalid_field`.
    pub async fn set_photo_from_file(&self, path: &Path) -> Result<MyProfile> {
        let media = self.upload_file(path, MediaKind::Image, |_, _| {}).await?;
        self.set_photo(&media.id).await
    }

    /// Uploads an image held in memory and makes it the caller's photo.
    pub async fn set_photo_from_bytes(&self, bytes: Vec<u8>) -> Result<MyProfile> {
        let media = self.upload_bytes(bytes, MediaKind::Image).await?;
        self.set_photo(&media.id).await
    }

    /// `DELETE /v1/me/photo`: the caller has no photo any more.
    pub async fn remove_photo(&self) -> Result<MyProfile> {
        self.call(Method::DELETE, "/v1/me/photo", None::<&()>, true)
            .await
    }

    /// `GET /v1/users/{user_id}/profile`: what the caller may see of
    /// someone's profile (`None` fields are unset or hidden from the
    /// caller; the two are not told apart).
    pub async fn profile(&self, user_id: UserId) -> Result<Profile> {
        let path = format!("/v1/users/{user_id}/profile");
        self.call(Method::GET, &path, None::<&()>, true).await
    }

    /// `GET /v1/users/{user_id}/photo?size=`: someone's photo (the
    /// caller's own too), small enough to hold whole. `not_found` when
    /// they have none or do not show it to the caller.
    pub async fn photo(&self, user_id: UserId, size: PhotoSize) -> Result<Photo> {
        let path = format!("/v1/users/{user_id}/photo");
        let resp = self
            .request(Method::GET, &path)?
            .query(&[("size", size.name())])
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(crate::api::error_from(resp).await);
        }
        let mime = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let bytes = resp.bytes().await?.to_vec();
        Ok(Photo { mime, bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_named_by_their_type() {
        let photo = |mime: &str| Photo {
            mime: mime.to_owned(),
            bytes: Vec::new(),
        };
        assert_eq!(photo("image/png").extension(), "png");
        assert_eq!(photo("image/jpeg").extension(), "jpg");
        assert_eq!(photo("application/octet-stream").extension(), "jpg");
    }
}
