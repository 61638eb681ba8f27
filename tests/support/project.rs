//! Temporary project folders: `migrations/` with files (each with an optional header), an
//! optional `concertina.toml`, copies of the shop example's migrations.

use crate::support::cli::{Cli, concertina};
use std::path::{Path, PathBuf};

/// The header that makes a fixture lint-clean while the classifier still judges every
/// statement unknown (and harmless once it judges them).
pub const FIXTURE: &str = "-- concertina: allow unknown-statement test fixture\n";

/// A config with one app, `api`, versioned by its `version` label.
pub const API_CONFIG: &str = "[apps.api]\nselector = \"app=api\"\nversion = \"label:version\"\n";

/// The shop example's migrations.
pub fn shop_migrations() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/shop/migrations")
}

/// A project builder: `migrations/` inside a temporary folder, no header, no config.
pub fn project() -> ProjectBuilder {
    ProjectBuilder::default()
}

/// What [`project`] builds.
#[derive(Default)]
pub struct ProjectBuilder {
    flat: bool,
    header: String,
    config: Option<String>,
    shop: bool,
    files: Vec<(String, String)>,
}

impl ProjectBuilder {
    /// The folder itself is the migrations folder (no `migrations/`; no config allowed).
    pub fn flat(mut self) -> Self {
        self.flat = true;
        self
    }

    /// Every migration [`Project::write`] writes starts with `header` (e.g. [`FIXTURE`]).
    pub fn header(mut self, header: &str) -> Self {
        self.header = header.to_string();
        self
    }

    /// `concertina.toml` in the project folder.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }

    /// Every migration of the shop example, copied as it is (before the files).
    pub fn shop(mut self) -> Self {
        self.shop = true;
        self
    }

    /// Migrations (name, body), each written with the header.
    pub fn files(mut self, files: &[(&str, &str)]) -> Self {
        self.files.extend(
            files
                .iter()
                .map(|(name, body)| (name.to_string(), body.to_string())),
        );
        self
    }

    /// Makes the folder.
    pub fn build(self) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let migrations = if self.flat {
            assert!(self.config.is_none(), "a flat project has no config");
            dir.path().to_path_buf()
        } else {
            let migrations = dir.path().join("migrations");
            std::fs::create_dir(&migrations).expect("mkdir migrations");
            migrations
        };
        if let Some(config) = &self.config {
            std::fs::write(dir.path().join("concertina.toml"), config).expect("write config");
        }
        let project = Project {
            dir,
            migrations,
            header: self.header,
        };
        if self.shop {
            for entry in std::fs::read_dir(shop_migrations()).expect("read the shop example") {
                let entry = entry.expect("a shop migration");
                std::fs::copy(entry.path(), project.migrations.join(entry.file_name()))
                    .expect("copy a shop migration");
            }
        }
        project.write_files(
            &self
                .files
                .iter()
                .map(|(name, body)| (name.as_str(), body.as_str()))
                .collect::<Vec<_>>(),
        );
        project
    }
}

/// A temporary project folder, removed when dropped.
pub struct Project {
    dir: tempfile::TempDir,
    migrations: PathBuf,
    header: String,
}

impl Project {
    /// The project folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The migrations folder (the project folder itself when flat).
    pub fn migrations(&self) -> &Path {
        &self.migrations
    }

    /// `concertina.toml`, when the project has one.
    pub fn config_file(&self) -> Option<PathBuf> {
        let file = self.path().join("concertina.toml");
        file.exists().then_some(file)
    }

    /// Writes migration `name`: the header, then `body` (text, or any bytes).
    pub fn write(&self, name: &str, body: impl AsRef<[u8]>) {
        let mut bytes = self.header.as_bytes().to_vec();
        bytes.extend_from_slice(body.as_ref());
        std::fs::write(self.migrations.join(name), bytes).expect("write a migration");
    }

    /// Writes each (name, body) as [`Project::write`] does.
    pub fn write_files(&self, files: &[(&str, &str)]) {
        for (name, body) in files {
            self.write(name, body);
        }
    }

    /// Copies the shop example's migrations `names` (as they are, no header).
    pub fn copy_shop(&self, names: &[&str]) {
        for name in names {
            std::fs::copy(shop_migrations().join(name), self.migrations.join(name))
                .expect("copy a shop migration");
        }
    }

    /// `concertina` run in the project folder, finding what it finds there by itself.
    pub fn cli(&self) -> Cli {
        concertina().current_dir(self.path())
    }

    /// `concertina` run in the project folder against `url`, given its migrations and
    /// (when it has one) its config.
    pub fn against(&self, url: &str) -> Cli {
        let cli = self.cli().database_url(url).migrations(self.migrations());
        match self.config_file() {
            Some(config) => cli.config(config),
            None => cli,
        }
    }
}

impl Project {
    /// Makes the project folder a git repository with everything in it committed (the
    /// point `lint --base HEAD` compares with).
    pub fn commit_all(&self) {
        for args in [
            &["init", "-q"][..],
            &["add", "-A"],
            &["commit", "-qm", "base"],
        ] {
            let status = std::process::Command::new("git")
                .current_dir(self.path())
                .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
                .args(args)
                .status()
                .expect("git");
            assert!(status.success(), "git {args:?}");
        }
    }
}
