//! One script of calls through every trait method, run on both backends:
//! the two transcripts (each answer, value or refusal, with clock times
//! masked) must be the same, line for line.

use crate::{postgres, sqlite, Backend};
use hark_proto::{
    ChatId, ChatSettingsRequest, ClientMsgId, DeviceId, PrivacySettings, Seq, UserId, Visibility,
};
use hark_store::{HistoryQuery, NewMessage, Store, Windows};
use std::fmt::Debug;
use std::sync::Arc;

/// Answers, one a line, with every 13-digit number (a time in ms) masked.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    fn note(&mut self, what: &str, answer: impl Debug) {
        self.0
            .push(format!("{what}: {}", mask_times(&format!("{answer:?}"))));
    }
}

fn mask_times(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut digits = String::new();
    for c in s.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() == 13 {
            out.push('T');
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        out.push(c);
    }
    out.pop();
    out
}

fn message(chat: ChatId, (user, device): (UserId, DeviceId), id: &str, text: &str) -> NewMessage {
    NewMessage {
        chat_id: chat,
        sender_id: user,
        sender_device: device,
        client_id: ClientMsgId(id.into()),
        text: text.into(),
        reply_to: None,
        forwarded: false,
        media: None,
        encrypted: None,
    }
}

async fn script(store: Arc<dyn Store>) -> Vec<String> {
    let mut t = Transcript::default();
    let open = Windows {
        edit_ms: 60_000,
        delete_ms: 60_000,
    };
    let closed = Windows {
        edit_ms: -1,
        delete_ms: -1,
    };

    // Accounts.
    let mut people = Vec::new();
    for (i, name) in ["ann", "Ben", "cat", "dan", "a_b"].iter().enumerate() {
        let user = store
            .create_user(name, &format!("{name}!"), "h")
            .await
            .unwrap();
        let device = store
            .create_device(user.id, "phone", [i as u8 + 1; 32])
            .await
            .unwrap();
        t.note("device", &device);
        people.push((user.id, device.id));
    }
    let (ann, ben, cat, dan) = (people[0], people[1], people[2], people[3]);
    t.note("taken", store.create_user("BEN", "x", "h").await);
    t.note("credentials", store.credentials("bEn").await);
    t.note("no credentials", store.credentials("nobody").await);
    let laptop = store
        .create_device(ann.0, "laptop", [50; 32])
        .await
        .unwrap();
    t.note("devices", store.devices(ann.0).await);
    t.note("by token", store.device_by_token([50; 32]).await);
    t.note("revoke", store.revoke_device(ann.0, laptop.id).await);
    t.note("revoke again", store.revoke_device(ann.0, laptop.id).await);
    t.note("revoke other's", store.revoke_device(ben.0, ann.1).await);
    t.note("revoked token", store.device_by_token([50; 32]).await);
    t.note("rename user", store.set_display_name(ann.0, "Ann A").await);
    t.note("user", store.user(ben.0).await);
    t.note("no user", store.user(UserId(999)).await);
    t.note("search a", store.search_users("A", 10).await);
    t.note("search a_", store.search_users("a_", 10).await);
    t.note("search %", store.search_users("%", 10).await);
    let privacy = PrivacySettings {
        last_seen: Visibility::Contacts,
        online: Visibility::Nobody,
    };
    t.note("privacy", store.set_privacy(ben.0, privacy).await);
    t.note("last seen", store.set_last_seen(ben.0, 42).await);
    t.note(
        "presence",
        store
            .presence_records(&[ben.0, UserId(999), ann.0, ben.0])
            .await,
    );

    // Chats.
    let direct = store.create_direct(ann.0, ben.0, false).await.unwrap();
    t.note(
        "direct again",
        store.create_direct(ben.0, ann.0, false).await,
    );
    t.note(
        "direct to nobody",
        store.create_direct(ann.0, UserId(999), false).await,
    );
    t.note("self chat", store.create_direct(dan.0, dan.0, false).await);
    t.note("contacts", {
        let mut c: Vec<_> = store
            .contacts_among(ann.0, &[ben.0, cat.0, dan.0])
            .await
            .unwrap()
            .into_iter()
            .collect();
        c.sort();
        c
    });
    t.note(
        "too big",
        store
            .create_group(ann.0, "g", &[ben.0, cat.0], 2, false)
            .await,
    );
    t.note(
        "unknown member",
        store
            .create_group(ann.0, "g", &[UserId(999)], 9, false)
            .await,
    );
    let group = store
        .create_group(ann.0, "group", &[ben.0, ben.0, ann.0], 1024, false)
        .await
        .unwrap();
    t.note("rename by member", store.rename(ben.0, group, "x").await);
    t.note("rename direct", store.rename(ann.0, direct, "x").await);
    t.note("rename by outsider", store.rename(cat.0, group, "x").await);
    t.note(
        "rename no chat",
        store.rename(ann.0, ChatId(999), "x").await,
    );
    t.note("rename", store.rename(ann.0, group, "Group").await);
    t.note("add full", store.add_member(ann.0, group, cat.0, 2).await);
    t.note("add", store.add_member(ann.0, group, cat.0, 3).await);
    t.note("add again", store.add_member(ann.0, group, cat.0, 3).await);
    t.note(
        "add by member",
        store.add_member(ben.0, group, dan.0, 9).await,
    );
    t.note(
        "set admin noop",
        store.set_admin(ann.0, group, ann.0, true).await,
    );
    t.note(
        "set admin",
        store.set_admin(ann.0, group, ben.0, true).await,
    );
    t.note(
        "set admin outsider",
        store.set_admin(ann.0, group, dan.0, true).await,
    );
    t.note(
        "leave direct",
        store.remove_member(ann.0, direct, ann.0).await,
    );
    t.note(
        "remove outsider",
        store.remove_member(ann.0, group, dan.0).await,
    );
    t.note(
        "remove by member",
        store.remove_member(cat.0, group, ann.0).await,
    );

    // Messages.
    let mut seqs = Vec::new();
    for (i, who) in [ann, ben, ann, cat].into_iter().enumerate() {
        let ack = store
            .send(message(
                group,
                who,
                &format!("g{i}"),
                &format!("hello number {i}"),
            ))
            .await;
        t.note("send", &ack);
        seqs.push(ack.unwrap().seq);
    }
    t.note(
        "resend",
        store.send(message(group, ann, "g0", "other")).await,
    );
    t.note(
        "send outsider",
        store.send(message(group, dan, "d0", "x")).await,
    );
    t.note(
        "send no chat",
        store.send(message(ChatId(999), dan, "d1", "x")).await,
    );
    let mut reply = message(group, ben, "r1", "a reply");
    reply.reply_to = Some(seqs[0]);
    t.note("reply", store.send(reply.clone()).await);
    reply.client_id = ClientMsgId("r2".into());
    reply.reply_to = Some(Seq(99));
    t.note("reply to nothing", store.send(reply).await);
    // The chat list orders by last activity (ms) and then by id: the forward
    // must land in a later millisecond than the reply on both backends, or
    // the listings differ by timing alone (a tie on one, not the other).
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    t.note(
        "forward",
        store
            .forward((group, seqs[1]), message(direct, ann, "f1", ""))
            .await,
    );
    t.note(
        "forward from outside",
        store
            .forward((group, seqs[1]), message(direct, dan, "f2", ""))
            .await,
    );
    t.note(
        "edit other's",
        store.edit(group, ben.0, seqs[0], "x", None, open).await,
    );
    t.note(
        "edit late",
        store.edit(group, ann.0, seqs[0], "x", None, closed).await,
    );
    t.note(
        "edit",
        store
            .edit(group, ann.0, seqs[0], "hello edited", None, open)
            .await,
    );
    t.note(
        "react",
        store.react(group, ben.0, seqs[0], Some("👍")).await,
    );
    t.note(
        "react same",
        store.react(group, ben.0, seqs[0], Some("👍")).await,
    );
    t.note(
        "react cat",
        store.react(group, cat.0, seqs[0], Some("🎉")).await,
    );
    t.note(
        "react change",
        store.react(group, ben.0, seqs[0], Some("❤")).await,
    );
    t.note("unreact", store.react(group, cat.0, seqs[0], None).await);
    t.note("react none", store.react(group, dan.0, seqs[0], None).await);
    t.note(
        "hide",
        store.delete(group, cat.0, seqs[1], false, open).await,
    );
    t.note(
        "hide again",
        store.delete(group, cat.0, seqs[1], false, open).await,
    );
    t.note(
        "delete other's",
        store.delete(group, cat.0, seqs[0], true, open).await,
    );
    t.note(
        "delete late",
        store.delete(group, ann.0, seqs[2], true, closed).await,
    );
    t.note(
        "delete by admin",
        store.delete(group, ben.0, seqs[2], true, closed).await,
    );
    t.note(
        "delete again",
        store.delete(group, ann.0, seqs[2], true, open).await,
    );
    t.note(
        "react deleted",
        store.react(group, ann.0, seqs[2], Some("x")).await,
    );
    t.note(
        "edit deleted",
        store.edit(group, ann.0, seqs[2], "x", None, open).await,
    );
    t.note(
        "forward deleted",
        store
            .forward((group, seqs[2]), message(direct, ann, "f3", ""))
            .await,
    );
    t.note(
        "mark",
        store
            .mark(group, cat.0, cat.1, Some(seqs[1]), Some(seqs[0]))
            .await,
    );
    t.note(
        "mark beyond",
        store.mark(group, ben.0, ben.1, Some(Seq(99)), None).await,
    );
    t.note(
        "mark lower",
        store
            .mark(group, cat.0, cat.1, Some(Seq(1)), Some(Seq(1)))
            .await,
    );
    t.note(
        "mark outsider",
        store.mark(group, dan.0, dan.1, Some(Seq(1)), None).await,
    );
    t.note("info", store.message_info(ann.0, group, seqs[0]).await);
    t.note(
        "info other's",
        store.message_info(ben.0, group, seqs[0]).await,
    );
    t.note("info none", store.message_info(ann.0, group, Seq(99)).await);

    // Settings and listings.
    let pin = ChatSettingsRequest {
        muted_until: Some(Some(7)),
        archived: Some(true),
        pinned: Some(true),
    };
    t.note(
        "settings",
        store.set_chat_settings(direct, ann.0, pin).await,
    );
    t.note(
        "settings outsider",
        store
            .set_chat_settings(direct, cat.0, ChatSettingsRequest::default())
            .await,
    );
    for viewer in [ann.0, ben.0, cat.0, dan.0] {
        t.note("chats", store.chats(viewer).await);
        let mut ids: Vec<_> = store
            .member_chats(viewer)
            .await
            .unwrap()
            .into_iter()
            .collect();
        ids.sort();
        t.note("member chats", ids);
    }
    t.note("chat outsider", store.chat(dan.0, group).await);
    t.note("chat none", store.chat(dan.0, ChatId(999)).await);
    t.note("summary", store.chat_summary(cat.0, group).await);
    for query in [
        HistoryQuery::Latest { limit: 2 },
        HistoryQuery::Before {
            seq: Seq(4),
            limit: 2,
        },
        HistoryQuery::After {
            seq: Seq(1),
            limit: 10,
        },
    ] {
        t.note("history", store.history(cat.0, group, query).await);
    }
    t.note(
        "history outsider",
        store
            .history(dan.0, group, HistoryQuery::Latest { limit: 9 })
            .await,
    );
    t.note("search", store.search(ann.0, "hello num", None, 10).await);

    // Leaving and the admin who takes over.
    t.note("leave", store.remove_member(ann.0, group, ann.0).await);
    t.note("ben leaves", store.remove_member(ben.0, group, ben.0).await);
    t.note("group now", store.chat(cat.0, group).await);

    // Every stream, page by page, and its head.
    for (user, _) in &people {
        let mut after = hark_proto::Pos(0);
        loop {
            let page = store.sync(*user, after, 3).await.unwrap();
            t.note("page", (&page.events, page.head, page.more));
            match page.events.last() {
                Some(e) if page.more => after = e.pos,
                _ => break,
            }
        }
        t.note("head", store.head(*user).await);
    }
    t.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_backends_give_the_same_answers() {
    let (lite, pg): (Backend, Backend) = (sqlite(), postgres().await);
    let expected = script(lite.store.clone()).await;
    let got = script(pg.store.clone()).await;
    if let Ok(path) = std::env::var("HARK_TRANSCRIPT") {
        std::fs::write(path, expected.join("\n")).unwrap();
    }
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        assert_eq!(g, e, "answer {i} differs (left: PostgreSQL, right: SQLite)");
    }
    assert_eq!(got.len(), expected.len());
    // The script exercised refusals, not only successes.
    for refusal in [
        "Forbidden",
        "NotFound",
        "Invalid",
        "GroupFull",
        "UsernameTaken",
    ] {
        assert!(
            expected.iter().any(|line| line.contains(refusal)),
            "{refusal}"
        );
    }
}
