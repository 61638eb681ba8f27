//! `lint` on arbitrary bytes: the file's text goes through the parser, the directives, the
//! classifier and the schema model. Any panic is a bug; so is a finding outside the file.
#![no_main]

use concertina::analysis::analyze_one;
use concertina::config::Config;
use concertina::files::Migration;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data).into_owned();
    let lines = sql.split(['\n', '\r']).count() as u32 + 1;
    let migration = Migration {
        version: 1,
        description: "fuzz".into(),
        path: PathBuf::from("migrations/0001_fuzz.sql"),
        phase_suffix: None,
        checksum: String::new(),
        rollback: None,
        sql,
    };
    if let Ok(analyzed) = analyze_one(&migration, &Config::default()) {
        for finding in &analyzed.findings {
            assert!(finding.line >= 1 && finding.line <= lines, "{finding:?}");
        }
    }
});
