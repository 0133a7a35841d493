//! `hark contacts` and `hark block`: the user's own address book and the
//! people they blocked (neither is told).

use super::{connect, find_user, view, ServerOpt};
use hark_proto::User;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum PeopleCommand {
    /// List your contacts, or add or remove one (they are not told).
    #[command(args_conflicts_with_subcommands = true)]
    Contacts {
        #[command(subcommand)]
        command: Option<ContactsCommand>,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Block a user: neither of you can message the other (in your
    /// one-to-one chat), add the other to a group or see the other online.
    /// They are not told; chats you share stay.
    Block {
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Unblock a user.
    Unblock {
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// List the users you blocked.
    Blocked {
        #[command(flatten)]
        server: ServerOpt,
    },
}

#[derive(clap::Subcommand, Debug)]
pub(crate) enum ContactsCommand {
    /// Add a user to your contacts.
    Add {
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
    /// Remove a user from your contacts.
    Remove {
        username: String,
        #[command(flatten)]
        server: ServerOpt,
    },
}

pub(crate) async fn run(command: PeopleCommand) -> anyhow::Result<()> {
    match command {
        PeopleCommand::Contacts {
            command: None,
            server,
        } => {
            let (api, _) = connect(&server)?;
            let contacts = api.contacts().await?;
            if contacts.is_empty() {
                println!("no contacts yet (`hark contacts add <username>` adds one)");
            }
            print_users(&contacts);
        }
        PeopleCommand::Contacts {
            command: Some(ContactsCommand::Add { username, server }),
            ..
        } => {
            let (api, _) = connect(&server)?;
            let user = find_user(&api, &username).await?;
            api.add_contact(user.id).await?;
            println!("added {} to your contacts", view::user_name(&user));
        }
        PeopleCommand::Contacts {
            command: Some(ContactsCommand::Remove { username, server }),
            ..
        } => {
            let (api, _) = connect(&server)?;
            let user = find_user(&api, &username).await?;
            api.remove_contact(user.id).await?;
            println!("removed {} from your contacts", view::user_name(&user));
        }
        PeopleCommand::Block { username, server } => {
            let (api, _) = connect(&server)?;
            let user = find_user(&api, &username).await?;
            api.block(user.id).await?;
            println!(
                "blocked {}: neither of you can message the other one-to-one or see the other online; they are not told",
                view::user_name(&user)
            );
        }
        PeopleCommand::Unblock { username, server } => {
            let (api, _) = connect(&server)?;
            let user = find_user(&api, &username).await?;
            api.unblock(user.id).await?;
            println!("unblocked {}", view::user_name(&user));
        }
        PeopleCommand::Blocked { server } => {
            let (api, _) = connect(&server)?;
            let blocked = api.blocks().await?;
            if blocked.is_empty() {
                println!("you have not blocked anyone");
            }
            print_users(&blocked);
        }
    }
    Ok(())
}

/// One row per user, as `hark users` prints them.
fn print_users(users: &[User]) {
    for u in users {
        println!(
            "{:<6} {:<20} {}{}",
            u.id,
            u.username,
            u.display_name,
            view::bot_mark(u.bot)
        );
    }
}
