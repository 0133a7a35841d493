//! The configuration (`hark-config`): a TOML file's text and
//! `HARK_<TABLE>__<KEY>` variables, read as `hark serve` reads them. Any
//! text gets a configuration or an error, never a panic; a configuration
//! that is accepted prints (as `hark config check` prints it) to TOML that
//! reads back to the same settings.
//!
//! Input: the file's text; after a line `---`, variables, one `NAME=value`
//! a line.
//! Corpus: fuzz/corpus/config_file/: deploy/hark.toml, a few tables and
//! variables.
#![no_main]

use hark_config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, variables) = text.split_once("\n---\n").unwrap_or((text, ""));
    let env = variables
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
    let Ok(config) = Config::from_text(file, env) else {
        return;
    };
    let printed = config.to_toml().expect("an accepted configuration prints");
    // Read back without validation: secrets print as "<redacted>", which
    // is not a URL.
    let again: Config = toml::from_str(&printed).expect("the print reads back");
    assert_eq!(again.to_toml().expect("prints again"), printed);
});
