//! `hark profile` and `hark photo`: the about line and photo beyond a
//! person's name, and who sees them (yours to show and change, others' as
//! they show them to you).

use super::{connect, find_user, media, view, ServerOpt};
use anyhow::Context;
use hark_proto::{ErrorCode, MyProfile, PhotoSize, ProfileUpdate, Visibility};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ProfileCommand {
    /// Show your profile (about line, photo, who sees them) or, with a
    /// username, what that user shows you of theirs; `hark profile set`
    /// changes yours.
    #[command(args_conflicts_with_subcommands = true)]
    Profile {
        /// Whose profile to show (yours without it).
        username: Option<String>,
        #[command(subcommand)]
        command: Option<ProfileSubcommand>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Set or remove your profile photo, or save someone's.
    Photo {
        #[command(subcommand)]
        command: PhotoCommand,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ProfileSubcommand {
    /// Change your about line, or who sees it or your photo (only what is
    /// given changes).
    #[command(group(
        clap::ArgGroup::new("change")
            .required(true)
            .multiple(true)
            .args(["about", "about_visibility", "photo_visibility"])
    ))]
    Set {
        /// One line of at most 140 characters ("" clears it).
        #[arg(long)]
        about: Option<String>,
        /// Who sees your about line: everyone, contacts (the people you
        /// have a one-to-one chat with) or nobody.
        #[arg(long, value_name = "WHO", value_parser = parse_visibility)]
        about_visibility: Option<Visibility>,
        /// Who sees your photo: everyone, contacts (the people you have a
        /// one-to-one chat with) or nobody.
        #[arg(long, value_name = "WHO", value_parser = parse_visibility)]
        photo_visibility: Option<Visibility>,
        #[command(flatten)]
        server: ServerOpt,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum PhotoCommand {
    /// Make an image (JPEG, PNG, GIF or WebP) your photo: the square at its
    /// centre is kept, at most 640 pixels a side.
    Set {
        file: PathBuf,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Remove your photo.
    Remove {
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Save someone's photo (yours too), as they show it to you.
    Get {
        /// Whose photo.
        username: String,
        /// small (128 pixels a side) or large (up to 640).
        #[arg(long, value_parser = parse_size, default_value = "large")]
        size: PhotoSize,
        /// Where to save it (by default `<username>-<size>.jpg` or `.png`
        /// in this directory).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        server: ServerOpt,
    },
}

fn parse_visibility(text: &str) -> Result<Visibility, String> {
    match text {
        "everyone" => Ok(Visibility::Everyone),
        "contacts" => Ok(Visibility::Contacts),
        "nobody" => Ok(Visibility::Nobody),
        _ => Err("say everyone, contacts or nobody".to_owned()),
    }
}

fn parse_size(text: &str) -> Result<PhotoSize, String> {
    match text {
        "small" => Ok(PhotoSize::Small),
        "large" => Ok(PhotoSize::Large),
        _ => Err("say small or large".to_owned()),
    }
}

fn visibility_name(who: Visibility) -> &'static str {
    match who {
        Visibility::Everyone => "everyone",
        Visibility::Contacts => "contacts",
        Visibility::Nobody => "nobody",
    }
}

pub(crate) async fn run(command: ProfileCommand) -> anyhow::Result<()> {
    match command {
        ProfileCommand::Profile {
            command:
                Some(ProfileSubcommand::Set {
                    about,
                    about_visibility,
                    photo_visibility,
                    server,
                }),
            ..
        } => {
            let (api, session) = connect(&server)?;
            let change = ProfileUpdate {
                about,
                about_visibility,
                photo_visibility,
            };
            let profile = match api.update_my_profile(&change).await {
                Err(e) if e.code() == Some(ErrorCode::InvalidField) => {
                    return Err(anyhow::Error::from(e).context("nothing changed"))
                }
                answer => answer?,
            };
            println!("profile updated");
            print_mine(&session.user, &profile);
        }
        ProfileCommand::Profile {
            username: None,
            command: None,
            server,
        } => {
            let (api, session) = connect(&server)?;
            let profile = api.my_profile().await?;
            print_mine(&session.user, &profile);
        }
        ProfileCommand::Profile {
            username: Some(username),
            command: None,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let user = find_user(&api, &username).await?;
            let profile = api.profile(user.id).await?;
            println!("{} (user {})", view::user_name(&user), user.id);
            match profile.about.as_deref() {
                Some(about) if !about.is_empty() => println!("about: {about}"),
                _ => println!("about: none (or hidden from you)"),
            }
            match profile.photo {
                Some(_) => println!("photo: yes (`hark photo get {}` saves it)", user.username),
                None => println!("photo: none (or hidden from you)"),
            }
        }
        ProfileCommand::Photo { command } => photo(command).await?,
    }
    Ok(())
}

/// The caller's own profile, one `name: value` line each.
fn print_mine(user: &hark_proto::User, profile: &MyProfile) {
    println!("{} (user {})", view::user_name(user), user.id);
    if profile.about.is_empty() {
        println!("about: none");
    } else {
        println!("about: {}", profile.about);
    }
    println!(
        "photo: {}",
        if profile.photo.is_some() { "yes" } else { "no" }
    );
    println!(
        "about visible to: {}",
        visibility_name(profile.about_visibility)
    );
    println!(
        "photo visible to: {}",
        visibility_name(profile.photo_visibility)
    );
}

async fn photo(command: PhotoCommand) -> anyhow::Result<()> {
    match command {
        PhotoCommand::Set { file, server } => {
            let (api, _) = connect(&server)?;
            let refused = || format!("{} cannot be your photo", file.display());
            let uploaded = media::upload(&api, &file, Some("image")).await;
            let media = uploaded.with_context(refused)?;
            let profile = api.set_photo(&media.id).await.with_context(refused)?;
            println!(
                "your photo is set ({} see it)",
                match profile.photo_visibility {
                    Visibility::Everyone => "everyone can",
                    Visibility::Contacts => "the people you have a one-to-one chat with",
                    Visibility::Nobody => "nobody else can",
                }
            );
        }
        PhotoCommand::Remove { server } => {
            let (api, _) = connect(&server)?;
            api.remove_photo().await?;
            println!("your photo is removed");
        }
        PhotoCommand::Get {
            username,
            size,
            output,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let user = find_user(&api, &username).await?;
            let photo = match api.photo(user.id, size).await {
                Err(e) if e.code() == Some(ErrorCode::NotFound) => anyhow::bail!(
                    "{} has no photo, or does not show it to you",
                    view::user_name(&user)
                ),
                answer => answer?,
            };
            let dest = output.unwrap_or_else(|| {
                PathBuf::from(format!(
                    "{}-{}.{}",
                    user.username,
                    size.name(),
                    photo.extension()
                ))
            });
            tokio::fs::write(&dest, &photo.bytes)
                .await
                .with_context(|| format!("writing {}", dest.display()))?;
            println!(
                "saved {} ({}, {})",
                dest.display(),
                photo.mime,
                view::size(photo.bytes.len() as u64)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibilities_and_sizes_parse_as_they_print() {
        for who in [
            Visibility::Everyone,
            Visibility::Contacts,
            Visibility::Nobody,
        ] {
            assert_eq!(parse_visibility(visibility_name(who)), Ok(who));
        }
        assert!(parse_visibility("friends").is_err());
        for size in [PhotoSize::Small, PhotoSize::Large] {
            assert_eq!(parse_size(size.name()), Ok(size));
        }
        assert!(parse_size("medium").is_err());
    }
}
