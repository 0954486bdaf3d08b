//! Session settings from the builder, environment variables and a config file.
//!
//! Precedence, highest first:
//!
//! 1. values set on the [`SessionBuilder`](crate::SessionBuilder) (the CLI's flags land here);
//! 2. environment variables (`SPILLFRAME_MEMORY_LIMIT`, `SPILLFRAME_SPILL_DIR`,
//!    `SPILLFRAME_TARGET_PARTITIONS`, `SPILLFRAME_BATCH_SIZE`, `SPILLFRAME_MAX_SPILL`,
//!    `SPILLFRAME_SPILL_COMPRESSION`, `SPILLFRAME_JOB_THREADS`, `SPILLFRAME_CLUSTER`);
//! 3. the config file: the path in `SPILLFRAME_CONFIG`, else `./spillframe.toml` if present;
//! 4. defaults: memory limit [`DEFAULT_MEMORY_FRACTION`] of usable memory, spill directory
//!    `$TMPDIR/spillframe`, one partition per core, batches of 8192 rows, no cap on spill
//!    bytes (beyond the disk's size), uncompressed spill files, one job worker per core, no
//!    cluster.
//!
//! [`DEFAULT_MEMORY_FRACTION`]: spillframe_spill::DEFAULT_MEMORY_FRACTION

use std::path::{Path, PathBuf};

use serde::Deserialize;
use spillframe_spill::{Compression, MemoryLimit};

use crate::error::{Error, Result};

/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "SPILLFRAME_CONFIG";
/// Config file read from the working directory when [`CONFIG_ENV`] is not set.
pub const DEFAULT_CONFIG_FILE: &str = "spillframe.toml";

/// Environment variable naming a `cluster.toml` (the same variable the cluster tools read).
pub const CLUSTER_ENV: &str = "SPILLFRAME_CLUSTER";

/// Default rows per batch.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// Session settings. `None` means "not set here": a lower layer or the default applies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// Memory limit for the session's memory pool.
    pub memory_limit: Option<MemoryLimit>,
    /// Base directory for spill files; each session makes its own locked subdirectory.
    pub spill_dir: Option<PathBuf>,
    /// Partitions to split work into (parallelism).
    pub target_partitions: Option<usize>,
    /// Rows per batch.
    pub batch_size: Option<usize>,
    /// Cap on the bytes of spill files a session may hold.
    pub max_spill: Option<u64>,
    /// Compression of spill files (none, lz4, zstd).
    pub spill_compression: Option<Compression>,
    /// Threads of the worker pool that runs user functions (jobs).
    pub job_threads: Option<usize>,
    /// A `cluster.toml` whose peers the session places partitions on and runs fragments on.
    pub cluster: Option<PathBuf>,
}

/// The config file's shape. Unknown keys are an error, so a typo names itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    memory_limit: Option<toml::Value>,
    spill_dir: Option<PathBuf>,
    target_partitions: Option<i64>,
    batch_size: Option<i64>,
    max_spill: Option<toml::Value>,
    spill_compression: Option<String>,
    job_threads: Option<i64>,
    cluster: Option<PathBuf>,
}

impl Settings {
    /// Fills every setting that is unset here from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            memory_limit: self.memory_limit.or(lower.memory_limit),
            spill_dir: self.spill_dir.or(lower.spill_dir),
            target_partitions: self.target_partitions.or(lower.target_partitions),
            batch_size: self.batch_size.or(lower.batch_size),
            max_spill: self.max_spill.or(lower.max_spill),
            spill_compression: self.spill_compression.or(lower.spill_compression),
            job_threads: self.job_threads.or(lower.job_threads),
            cluster: self.cluster.or(lower.cluster),
        }
    }

    /// Settings from the process environment.
    pub fn from_env() -> Result<Settings> {
        Settings::from_vars(|name| std::env::var(name).ok())
    }

    /// Settings from environment-style variables looked up with `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let origin = |name: &str| format!("environment variable {name}");
        Ok(Settings {
            memory_limit: get("SPILLFRAME_MEMORY_LIMIT")
                .map(|v| parse_memory_limit(&v, &origin("SPILLFRAME_MEMORY_LIMIT")))
                .transpose()?,
            spill_dir: get("SPILLFRAME_SPILL_DIR").map(PathBuf::from),
            target_partitions: get("SPILLFRAME_TARGET_PARTITIONS")
                .map(|v| {
                    parse_count(
                        "target_partitions",
                        &v,
                        &origin("SPILLFRAME_TARGET_PARTITIONS"),
                    )
                })
                .transpose()?,
            batch_size: get("SPILLFRAME_BATCH_SIZE")
                .map(|v| parse_count("batch_size", &v, &origin("SPILLFRAME_BATCH_SIZE")))
                .transpose()?,
            max_spill: get("SPILLFRAME_MAX_SPILL")
                .map(|v| parse_size("max_spill", &v, &origin("SPILLFRAME_MAX_SPILL")))
                .transpose()?,
            spill_compression: get("SPILLFRAME_SPILL_COMPRESSION")
                .map(|v| parse_compression(&v, &origin("SPILLFRAME_SPILL_COMPRESSION")))
                .transpose()?,
            job_threads: get("SPILLFRAME_JOB_THREADS")
                .map(|v| parse_count("job_threads", &v, &origin("SPILLFRAME_JOB_THREADS")))
                .transpose()?,
            cluster: get(CLUSTER_ENV).map(PathBuf::from),
        })
    }

    /// Settings from a TOML config file.
    pub fn from_file(path: &Path) -> Result<Settings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("cannot read config file", path, e))?;
        Settings::from_toml(&text, path)
    }

    /// Settings from TOML text; `path` is only used in messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Settings> {
        let file: FileSettings = toml::from_str(text).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            reason: e.to_string().trim().to_string(),
        })?;
        let origin = format!("config file '{}'", path.display());
        let memory_limit = match file.memory_limit {
            None => None,
            Some(toml::Value::String(s)) => Some(parse_memory_limit(&s, &origin)?),
            Some(toml::Value::Integer(i)) => Some(parse_memory_limit(&i.to_string(), &origin)?),
            Some(toml::Value::Float(f)) => Some(parse_memory_limit(&format!("{f:?}"), &origin)?),
            Some(other) => {
                return Err(Error::Setting {
                    setting: "memory_limit".into(),
                    value: other.to_string(),
                    origin,
                    reason: "expected a size such as \"2GiB\" or a fraction such as \"50%\"".into(),
                });
            }
        };
        let count = |name: &str, v: Option<i64>| -> Result<Option<usize>> {
            v.map(|v| parse_count(name, &v.to_string(), &origin))
                .transpose()
        };
        Ok(Settings {
            memory_limit,
            spill_dir: file.spill_dir,
            target_partitions: count("target_partitions", file.target_partitions)?,
            batch_size: count("batch_size", file.batch_size)?,
            max_spill: match file.max_spill {
                None => None,
                Some(toml::Value::String(v)) => Some(parse_size("max_spill", &v, &origin)?),
                Some(toml::Value::Integer(i)) => {
                    Some(parse_size("max_spill", &i.to_string(), &origin)?)
                }
                Some(other) => Some(parse_size("max_spill", &other.to_string(), &origin)?),
            },
            spill_compression: file
                .spill_compression
                .map(|v| parse_compression(&v, &origin))
                .transpose()?,
            job_threads: count("job_threads", file.job_threads)?,
            // Relative to the config file, like any path written in it.
            cluster: file.cluster.map(|c| match path.parent() {
                Some(dir) if c.is_relative() => dir.join(c),
                _ => c,
            }),
        })
    }

    /// The config file in effect: `$SPILLFRAME_CONFIG` if set (it must exist), else
    /// `./spillframe.toml` if it exists.
    pub fn config_file_path() -> Result<Option<PathBuf>> {
        if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|v| !v.is_empty()) {
            let p = PathBuf::from(p);
            if !p.is_file() {
                return Err(Error::Setting {
                    setting: CONFIG_ENV.into(),
                    value: p.display().to_string(),
                    origin: format!("environment variable {CONFIG_ENV}"),
                    reason: "no such file".into(),
                });
            }
            return Ok(Some(p));
        }
        let local = PathBuf::from(DEFAULT_CONFIG_FILE);
        Ok(local.is_file().then_some(local))
    }

    /// Environment variables over the config file.
    pub fn from_environment_and_file() -> Result<Settings> {
        let env = Settings::from_env()?;
        let file = match Settings::config_file_path()? {
            Some(p) => Settings::from_file(&p)?,
            None => Settings::default(),
        };
        Ok(env.or(file))
    }
}

fn parse_memory_limit(value: &str, origin: &str) -> Result<MemoryLimit> {
    value.parse::<MemoryLimit>().map_err(|e| Error::Setting {
        setting: "memory_limit".into(),
        value: value.to_string(),
        origin: origin.to_string(),
        reason: match e {
            spillframe_spill::Error::InvalidMemoryLimit { reason, .. } => reason,
            other => other.to_string(),
        },
    })
}

pub(crate) fn parse_count(setting: &str, value: &str, origin: &str) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Error::Setting {
            setting: setting.to_string(),
            value: value.to_string(),
            origin: origin.to_string(),
            reason: "expected a whole number greater than zero".into(),
        }),
    }
}

/// Parses a size in bytes ("10GiB", "500MB", "1048576") with the spill crate's parser, and
/// names the setting when it is wrong.
pub(crate) fn parse_size(setting: &str, value: &str, origin: &str) -> Result<u64> {
    spillframe_spill::parse_size(value).map_err(|reason| Error::Setting {
        setting: setting.to_string(),
        value: value.to_string(),
        origin: origin.to_string(),
        reason,
    })
}

fn parse_compression(value: &str, origin: &str) -> Result<Compression> {
    value
        .parse::<Compression>()
        .map_err(|reason| Error::Setting {
            setting: "spill_compression".into(),
            value: value.to_string(),
            origin: origin.to_string(),
            reason,
        })
}
