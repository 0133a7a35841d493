//! docs/configuration.md is generated from the configuration structs in
//! `crates/hark-config/src/lib.rs` (their fields, doc comments and
//! defaults), so it cannot drift: this test renders it and compares.
//! After changing a setting, run
//! `HARK_BLESS=1 cargo test -p hark-server --test it configuration` and
//! commit the file.

use hark_server::config::{Config, S3};
use std::collections::BTreeMap;

const DOC: &str = "docs/configuration.md";

struct Field {
    name: String,
    ty: String,
    doc: String,
}

struct Table {
    doc: String,
    fields: Vec<Field>,
}

fn doc_of(attrs: &[syn::Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                lines.push(s.value().trim().to_owned());
            }
        }
    }
    lines.join(" ").replace('|', "\\|").trim().to_owned()
}

/// The `long` flag and `env` variable of a `ServeArgs` field.
fn flag_of(field: &syn::Field) -> Option<String> {
    for attr in &field.attrs {
        if !attr.path().is_ident("arg") {
            continue;
        }
        let text = quote::quote!(#attr).to_string();
        let env = text.split("env = \"").nth(1)?.split('"').next()?.to_owned();
        let name = field.ident.as_ref()?.to_string().replace('_', "-");
        return Some(format!("`--{name}`, `{env}`"));
    }
    None
}

fn parse() -> (BTreeMap<String, Table>, BTreeMap<String, (String, String)>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../hark-config/src/lib.rs");
    let file = syn::parse_file(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut tables = BTreeMap::new();
    let mut flags = BTreeMap::new();
    for item in file.items {
        let syn::Item::Struct(item) = item else {
            continue;
        };
        let syn::Fields::Named(named) = &item.fields else {
            continue;
        };
        if item.ident == "ServeArgs" {
            for f in &named.named {
                if let Some(flag) = flag_of(f) {
                    flags.insert(
                        f.ident.as_ref().unwrap().to_string(),
                        (flag, doc_of(&f.attrs)),
                    );
                }
            }
            continue;
        }
        let fields = named
            .named
            .iter()
            .map(|f| {
                let ty = &f.ty;
                Field {
                    name: f.ident.as_ref().unwrap().to_string(),
                    ty: quote::quote!(#ty).to_string().replace(' ', ""),
                    doc: doc_of(&f.attrs),
                }
            })
            .collect();
        tables.insert(
            item.ident.to_string(),
            Table {
                doc: doc_of(&item.attrs),
                fields,
            },
        );
    }
    (tables, flags)
}

fn kind(ty: &str) -> String {
    let inner = ty
        .strip_prefix("Option<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(ty);
    match inner {
        "u64" | "u32" | "usize" | "i64" | "i32" => "integer".into(),
        "bool" => "boolean".into(),
        "String" => "string".into(),
        "SecretString" => "string (secret)".into(),
        "PathBuf" => "path".into(),
        "SocketAddr" => "address".into(),
        "Vec<String>" => "list of strings".into(),
        other => other.to_lowercase(),
    }
}

fn default_of(table: Option<&toml::Value>, field: &Field) -> String {
    match table.and_then(|t| t.get(&field.name)) {
        Some(v) => format!("`{v}`"),
        None if field.ty.contains("SecretString") => "not set".into(),
        None => "not set".into(),
    }
}

fn render() -> String {
    let (tables, flags) = parse();
    let defaults = toml::Value::try_from(Config::default()).unwrap();
    let s3_defaults =
        toml::Value::try_from(toml::from_str::<S3>("bucket = \"(required)\"").unwrap()).unwrap();
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated from crates/hark-config/src/lib.rs by the test in\n\
         crates/hark-server/tests/it/configuration.rs; do not edit by hand. After\n\
         changing a setting: HARK_BLESS=1 cargo test -p hark-server --test it configuration -->\n\n\
         `hark serve` reads its settings, each overriding the one before, from:\n\n\
         1. the defaults below;\n\
         2. a TOML file given with `--config FILE` (or `HARK_CONFIG`);\n\
         3. `HARK_<TABLE>__<KEY>` environment variables for the settings of a table\n   \
            (`HARK_LIMITS__MAX_FRAME_BYTES=131072`, `HARK_MEDIA__S3__BUCKET=hark`): the\n   \
            value is read as a TOML number, boolean or array when it is one, else as\n   \
            text (quote a number meant as text: `HARK_PUSH__CONTACT='\"123\"'`);\n\
         4. flags, each with its own variable (top-level settings only).\n\n\
         A key the file or a variable names that Hark does not know is an error, not\n\
         ignored, and so is a value that cannot work (checked before the server\n\
         starts). `hark config check` (with the same `--config`, flags and variables)\n\
         validates all of it and prints the configuration the server would run with,\n\
         secrets shown as `\"<redacted>\"`:\n\n\
         ```sh\nhark config check --config /etc/hark/hark.toml\n```\n\n\
         Secrets (the database and bus URLs, which may hold passwords, the S3 secret\n\
         key, the metrics token) never reach a log or an error message.\n\n\
         Logging is not a setting of the file: `HARK_LOG` (a `tracing` filter,\n\
         default `info`) and `HARK_LOG_FORMAT=json` for JSON lines (operations.md,\n\
         \"Logs\").\n",
    );
    let root = &tables["Config"];
    out.push_str("\n## Top level\n\n| key | type | default | flag, variable | what |\n|---|---|---|---|---|\n");
    let mut sections = Vec::new();
    for f in &root.fields {
        let inner = f.ty.trim_start_matches("Option<").trim_end_matches('>');
        if tables.contains_key(inner) {
            sections.push((f.name.clone(), inner.to_owned(), f.doc.clone()));
            continue;
        }
        let (flag, flag_doc) = flags
            .get(&f.name)
            .cloned()
            .unwrap_or_else(|| ("–".into(), String::new()));
        let doc = if f.doc.is_empty() {
            flag_doc
        } else {
            f.doc.clone()
        };
        assert!(!doc.is_empty(), "the setting {} has no doc comment", f.name);
        out.push_str(&format!(
            "| `{}` | {} | {} | {flag} | {doc} |\n",
            f.name,
            kind(&f.ty),
            default_of(Some(&defaults), f)
        ));
    }
    for (key, ty, field_doc) in sections {
        render_table(&mut out, &tables, &key, &ty, &field_doc, defaults.get(&key));
        // Tables inside a table (media.s3).
        for f in &tables[&ty].fields {
            let inner = f.ty.trim_start_matches("Option<").trim_end_matches('>');
            if tables.contains_key(inner) {
                let path = format!("{key}.{}", f.name);
                let table_defaults = defaults
                    .get(&key)
                    .and_then(|t| t.get(&f.name))
                    .or(Some(&s3_defaults));
                render_table(&mut out, &tables, &path, inner, &f.doc, table_defaults);
            }
        }
    }
    out
}

fn render_table(
    out: &mut String,
    tables: &BTreeMap<String, Table>,
    path: &str,
    ty: &str,
    field_doc: &str,
    defaults: Option<&toml::Value>,
) {
    let table = &tables[ty];
    let var = path.replace('.', "__").to_uppercase();
    let doc = if table.doc.is_empty() {
        field_doc
    } else {
        &table.doc
    };
    out.push_str(&format!("\n## `[{path}]`\n\n{doc}\n"));
    out.push_str("\n| key | type | default | variable | what |\n|---|---|---|---|---|\n");
    for f in &table.fields {
        let inner = f.ty.trim_start_matches("Option<").trim_end_matches('>');
        if tables.contains_key(inner) {
            continue;
        }
        assert!(
            !f.doc.is_empty(),
            "the setting {path}.{} has no doc comment",
            f.name
        );
        out.push_str(&format!(
            "| `{}` | {} | {} | `HARK_{var}__{}` | {} |\n",
            f.name,
            kind(&f.ty),
            default_of(defaults, f),
            f.name.to_uppercase(),
            f.doc
        ));
    }
}

#[test]
fn the_reference_matches_the_config_struct() {
    let rendered = render();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(DOC);
    if std::env::var_os("HARK_BLESS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == rendered,
        "{DOC} is not what hark-config says: run \
         `HARK_BLESS=1 cargo test -p hark-server --test it configuration` and commit it"
    );
}

#[test]
fn every_documented_variable_sets_its_setting() {
    // Each nested setting, set through its variable, is read (a typo in
    // the rendering of a name would be an unknown key here).
    let (tables, _) = parse();
    for (table, ty) in [
        ("limits", "Limits"),
        ("cluster", "Cluster"),
        ("jobs", "Jobs"),
        ("media", "Media"),
        ("push", "Push"),
        ("metrics", "Metrics"),
    ] {
        for f in &tables[ty].fields {
            if f.name == "s3" {
                continue;
            }
            let value = match kind(&f.ty).as_str() {
                "integer" => "7000000".to_owned(),
                "list of strings" => "[\"example.com\"]".to_owned(),
                "path" => "/tmp/hark-media".to_owned(),
                "address" => "127.0.0.1:9100".to_owned(),
                "string (secret)" => "a long enough secret".to_owned(),
                _ if f.name == "contact" => "https://example.com/ops".to_owned(),
                other => panic!("no sample value for {table}.{} ({other})", f.name),
            };
            let name = format!("HARK_{}__{}", table.to_uppercase(), f.name.to_uppercase());
            let args = hark_server::config::ServeArgs::default();
            let config = Config::load_from(&args, [(name.clone(), value.clone())]);
            let config = match config {
                Ok(c) => c,
                // A value the checks refuse still proves the key is known.
                Err(e) => {
                    let text = format!("{e:#}");
                    assert!(!text.contains("unknown field"), "{name}: {text}");
                    continue;
                }
            };
            let shown = config.to_toml().unwrap();
            let shown: toml::Value = toml::from_str(&shown).unwrap();
            let got = &shown[table][&f.name];
            if f.ty.contains("SecretString") {
                assert_eq!(got.as_str(), Some("<redacted>"), "{name}");
            } else {
                assert!(
                    got.to_string()
                        .contains(value.trim_matches(|c| c == '[' || c == ']' || c == '"')),
                    "{name}={value} shows as {got}"
                );
            }
        }
    }
}
