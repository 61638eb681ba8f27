//! What `import` makes of a tool's history (pure): each applied version against the
//! folder's files and concertina's state, and the tools' own checksums.

use super::*;

/// sqlx-cli's checksum of a migration: SHA-384 of the file's text, as its `Migration::new`
/// computes it (without `ignored-chars` in `sqlx.toml`).
pub fn sqlx_checksum(text: &str) -> Vec<u8> {
    Sha384::digest(text.as_bytes()).to_vec()
}

/// Flyway's checksum of a SQL migration: `java.util.zip.CRC32` fed the UTF-8 bytes of
/// each line as `BufferedReader.readLine` returns them (without `\n`, `\r\n` or `\r`),
/// with a byte-order mark at the start of the first line removed, the 32-bit value cast to
/// a signed Java `int` (Flyway's `ChecksumCalculator`). Line endings and blank lines
/// therefore do not change it.
pub fn flyway_checksum(text: &str) -> i32 {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
    let mut digest = crc.digest();
    for line in text.split(['\n', '\r']) {
        digest.update(line.as_bytes());
    }
    // Java's `(int) crc32.getValue()`: the same 32 bits read as signed.
    digest.finalize() as i32
}

/// Judges `history` against the folder and what concertina recorded: what to record, what
/// is already there, what drifted, what refuses.
pub(super) fn judge(
    tool: Tool,
    table: &str,
    set: &MigrationSet,
    history: History,
    recorded: &BTreeMap<u64, AppliedRow>,
    phases: &BTreeMap<u64, Phase>,
) -> ImportReport {
    let files: BTreeMap<u64, &Migration> = set.migrations.iter().map(|m| (m.version, m)).collect();
    let mut refused = history.refused;
    let mut notes = history.notes;
    // Flyway DELETE rows: fine without a file, unsafe with one.
    for (version, rank) in &history.deleted {
        if let Some(file) = files.get(version) {
            refused.push(format!(
                "{table} installed_rank {rank}: `flyway repair` marked version {version} as deleted, but {} has it: concertina cannot tell whether the database has what it makes; remove the file, or apply it with Flyway, then import again",
                file.display_path()
            ));
        }
    }

    // Every applied version and what the history knows of it.
    let mut applied: BTreeMap<u64, HistoryEntry> = history.entries;
    if let Some(through) = &history.through {
        if through.needs_file && !files.contains_key(&through.version) {
            refused.push(format!(
                "{table}: {tool} applied version {} but no file in the folder has it; restore the file (the folder must hold every applied migration), then import again",
                through.version
            ));
        }
        for m in files.values().filter(|m| m.version <= through.version) {
            applied.entry(m.version).or_insert(HistoryEntry {
                version: m.version,
                checksum: ToolChecksum::None,
                applied_at: through.applied_at,
                applied_by: through.applied_by.clone(),
                duration_ms: None,
            });
        }
    }
    let missing: Vec<String> = applied
        .keys()
        .filter(|v| !files.contains_key(v))
        .map(|v| v.to_string())
        .collect();
    if !missing.is_empty() {
        refused.push(format!(
            "{table}: {tool} applied version{} {} but the folder has no file for {}; restore {} (the folder must hold every applied migration), or point `--migrations` at the folder {tool} used, then import again",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "it" } else { "them" },
            if missing.len() == 1 { "the file" } else { "the files" },
        ));
    }
    let highest = applied.keys().next_back().copied();
    let mut pending = Vec::new();
    for m in files.values().filter(|m| !applied.contains_key(&m.version)) {
        match highest {
            Some(highest) if m.version < highest => refused.push(format!(
                "{}: version {} is older than version {highest}, which {tool} applied, but {tool} never applied it, so it would run out of order; if it has not run anywhere, rename it to a version above {highest}; if {tool} applied it under another version, restore that name",
                m.display_path(),
                m.version
            )),
            _ if !recorded.contains_key(&m.version) => pending.push(m.version),
            _ => {}
        }
    }

    let mut drift = Vec::new();
    let mut imported = Vec::new();
    let mut already = Vec::new();
    for entry in applied.values() {
        let Some(file) = files.get(&entry.version) else {
            continue;
        };
        match &entry.checksum {
            ToolChecksum::Sha384(recorded) => {
                let now = sqlx_checksum(&file.sql);
                if *recorded != now {
                    drift.push(ImportDrift {
                        version: entry.version,
                        path: file.display_path(),
                        algorithm: format!("{tool} sha384"),
                        recorded: hex::encode(recorded),
                        file: hex::encode(now),
                    });
                    continue;
                }
            }
            ToolChecksum::Crc32(Some(recorded)) => {
                let now = flyway_checksum(&file.sql);
                if *recorded != now {
                    drift.push(ImportDrift {
                        version: entry.version,
                        path: file.display_path(),
                        algorithm: format!("{tool} crc32"),
                        recorded: recorded.to_string(),
                        file: now.to_string(),
                    });
                    continue;
                }
            }
            ToolChecksum::Crc32(None) => notes.push(format!(
                "{}: Flyway has no checksum for version {}; only its presence was checked",
                file.display_path(),
                entry.version
            )),
            ToolChecksum::None => {}
        }
        match recorded.get(&entry.version) {
            Some(row) if row.checksum == file.checksum => already.push(entry.version),
            Some(row) => drift.push(ImportDrift {
                version: entry.version,
                path: file.display_path(),
                algorithm: "concertina sha256".into(),
                recorded: row.checksum.clone(),
                file: file.checksum.clone(),
            }),
            None => {
                let mut row = crate::runner::baseline::row_of(file, phases);
                if let Some(at) = entry.applied_at {
                    row.started_at = at;
                    row.finished_at = at;
                }
                if let Some(by) = entry.applied_by.clone().filter(|b| !b.is_empty()) {
                    row.applied_by = by;
                }
                row.duration_ms = entry.duration_ms.unwrap_or(0);
                row.imported_from = Some(tool.name().to_string());
                imported.push(row);
            }
        }
    }
    ImportReport {
        tool,
        table: table.to_string(),
        dry_run: true,
        imported,
        already,
        drift,
        refused,
        notes,
        pending,
    }
}
