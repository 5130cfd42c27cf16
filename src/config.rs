//! Settings: the embedded `config/default.toml`, then an optional file named
//! on the command line, then `MIKABOT__SECTION__KEY` environment variables.
//! A bad value fails start-up with the key, where it came from and what was
//! expected.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The defaults compiled into the binary.
pub const DEFAULTS: &str = include_str!("../config/default.toml");
/// Environment variable prefix; `__` separates section and key.
pub const ENV_PREFIX: &str = "MIKABOT";

/// Longest budget of a query rewrite, in milliseconds.
pub const MAX_QUERY_REWRITE_MS: u64 = 5_000;

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: key `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

/// A secret that never prints.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_empty() {
            "\"\""
        } else {
            "\"[redacted]\""
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub model: ModelSettings,
    pub offline: OfflineSettings,
    pub widget: WidgetSettings,
    pub demo: DemoSettings,
    pub operator: OperatorSettings,
    pub import: ImportSettings,
    pub limits: LimitSettings,
    pub dashboard: DashboardSettings,
    pub email: EmailSettings,
    pub privacy: PrivacySettings,
    pub desk: DeskConfig,
    pub log: LogSettings,
}

/// The live desk: holds, the live list, watchers' queues.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeskConfig {
    pub idle_return_secs: f64,
    pub linger_secs: f64,
    pub watcher_buffer: usize,
    pub max_message_chars: usize,
}

impl DeskConfig {
    /// The desk's settings, once validated.
    pub fn settings(&self) -> mikabot_actors::desk::DeskSettings {
        mikabot_actors::desk::DeskSettings {
            watcher_buffer: self.watcher_buffer,
            idle_return: std::time::Duration::from_secs_f64(self.idle_return_secs),
            linger: std::time::Duration::from_secs_f64(self.linger_secs),
            max_message_chars: self.max_message_chars,
        }
    }
}

/// The privacy supervisors' timing and the usage-data horizon.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    pub retention_sweep_minutes: u64,
    pub erasure_interval_secs: u64,
    pub technical_data_months: u32,
}

/// The owners' dashboard: its sessions and sign-in throttle.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSettings {
    /// A session unused this long ends.
    pub session_idle_minutes: u64,
    /// A session ends this long after sign-in, used or not.
    pub session_absolute_hours: u64,
    /// Failed sign-ins one account may have in `login_window_minutes`.
    pub login_failures_per_account: u32,
    /// Failed sign-ins one client address may have in `login_window_minutes`.
    pub login_failures_per_address: u32,
    pub login_window_minutes: u64,
    /// Sign-ups and emailed links (verification, reset) one address may ask
    /// for an hour.
    pub emails_per_address_per_hour: u32,
    /// Sign-ups whose address is not confirmed this long are removed.
    pub unverified_account_days: u64,
    /// How long emailed links stay valid.
    pub verify_link_hours: u64,
    pub reset_link_minutes: u64,
    pub invite_link_days: u64,
    /// The cookie policy's version: raising it asks every visitor again.
    pub consent_policy_version: u32,
    /// Create the demo owner (who owns the demo store) on first start.
    pub demo_owner: bool,
    pub demo_owner_email: String,
}

/// How the node sends email. An empty `smtp_host` keeps messages in the
/// log and the operator's outbox page instead.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls`, `tls` (SMTPS) or `none` (a relay on the same machine).
    pub smtp_security: SmtpSecurity,
    pub smtp_username: String,
    pub smtp_password: Secret,
    /// The From of every message, `Name <address>`.
    pub from: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

/// Bounds on what unauthenticated clients can make the node hold or spend.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Widget sessions open at once from one client address.
    pub sessions_per_address: usize,
    /// Widget sessions open at once from one IPv6 /48.
    pub sessions_per_ipv6_network: usize,
    /// Widget sessions open at once on the node.
    pub sessions_per_node: usize,
    /// New conversations (records on disk) one address may start an hour.
    pub new_conversations_per_address_per_hour: u32,
    /// Shopper messages (each one a model reply) one address may send a
    /// minute, across all its sockets.
    pub messages_per_address_per_minute: u32,
    /// Model tokens one store may spend a day (UTC); 0 is no limit.
    pub store_daily_tokens: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSettings {
    pub api_token: Secret,
    /// A file holding the token instead (its first line), for secret stores
    /// that mount files.
    pub api_token_file: String,
    /// Failed operator logins an address may make a minute before it is
    /// refused for a while.
    pub failed_attempts_per_minute: u32,
}

/// The shortest operator token accepted.
pub const MIN_OPERATOR_TOKEN_CHARS: usize = 32;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    pub max_upload_bytes: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    pub workers: usize,
    pub public_url: String,
    pub shutdown_timeout_secs: u64,
    /// Networks whose `Forwarded` / `X-Forwarded-For` headers are believed.
    pub trusted_proxies: Vec<String>,
    /// The header trusted proxies write the client's address into.
    pub forwarded_header: crate::http::address::ForwardedHeader,
    /// IPv6 clients are counted by this many leading bits.
    pub ipv6_limit_prefix: u8,
    pub store_threads: usize,
    /// Serve the WebSocket echo route used to test the transport.
    pub echo_socket: bool,
}

impl ServerSettings {
    /// The trusted proxies as networks (validated at load).
    pub fn trusted_networks(&self) -> Vec<crate::http::address::Cidr> {
        self.trusted_proxies
            .iter()
            .filter_map(|raw| raw.parse().ok())
            .collect()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    pub data_dir: PathBuf,
    pub cache_capacity_mb: u64,
    /// Durable writes that may wait for the storage thread; beyond it a
    /// shopper message is refused with `storage_busy`.
    pub flush_queue: usize,
    /// Empty: `<data_dir>.keyring`.
    pub keyring_file: PathBuf,
    /// Empty: read from `master_key_file`.
    pub master_key: Secret,
    /// Empty: `<data_dir>.key`.
    pub master_key_file: PathBuf,
}

impl StorageSettings {
    pub fn cache_bytes(&self) -> u64 {
        self.cache_capacity_mb.saturating_mul(1024 * 1024)
    }

    /// `path`, or the data directory's name with `extension` beside it.
    fn beside_data(&self, path: &std::path::Path, extension: &str) -> PathBuf {
        if !path.as_os_str().is_empty() {
            return path.to_path_buf();
        }
        let mut name = self.data_dir.as_os_str().to_os_string();
        if name.to_string_lossy().ends_with('/') {
            name = self
                .data_dir
                .components()
                .as_path()
                .as_os_str()
                .to_os_string();
        }
        name.push(".");
        name.push(extension);
        PathBuf::from(name)
    }

    /// The keyring file.
    pub fn keyring_path(&self) -> PathBuf {
        self.beside_data(&self.keyring_file, "keyring")
    }

    /// Where the storage finds its database and keys.
    pub fn options(&self) -> crate::storage::StorageOptions {
        use crate::storage::keyring::MasterKeySource;
        crate::storage::StorageOptions {
            data_dir: self.data_dir.clone(),
            keyring: self.keyring_path(),
            master_key: if self.master_key.is_empty() {
                MasterKeySource::File(self.beside_data(&self.master_key_file, "key"))
            } else {
                MasterKeySource::Inline(self.master_key.expose().trim().to_owned())
            },
            cache_bytes: self.cache_bytes(),
            flush_queue: self.flush_queue,
        }
    }
}

/// Which model answers shoppers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderChoice {
    Auto,
    Openai,
    Offline,
}

/// Which request field limits the reply's length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    MaxTokens,
    MaxCompletionTokens,
}

/// Whether replies offer the model the `show_products` tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolUse {
    /// Never: cards come from the references in the text.
    Off,
    /// Always (the provider is known to take tools).
    On,
    /// Offered until the provider refuses a request for carrying it.
    Auto,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSettings {
    pub provider: ProviderChoice,
    pub base_url: String,
    pub api_key: Secret,
    pub model: String,
    pub max_tokens: u32,
    pub max_tokens_field: MaxTokensField,
    pub temperature: f32,
    pub timeout_secs: u64,
    pub retry_budget_secs: u64,
    pub retry_base_delay_ms: u64,
    pub retry_max_delay_ms: u64,
    pub history_tokens: usize,
    /// Consecutive failed requests after which the provider is left alone.
    pub breaker_failures: u32,
    /// How long it is left alone before one reply probes it.
    pub breaker_cooldown_secs: u64,
    /// Ask the provider to report each request's token usage
    /// (`stream_options.include_usage`).
    pub stream_usage: bool,
    /// Milliseconds the provider gets to rewrite a shopper's message into a
    /// search query before each reply; 0: no rewrite.
    pub query_rewrite_ms: u64,
    /// Offer the `show_products` tool beside the references in the text.
    pub show_products_tool: ToolUse,
}

impl ModelSettings {
    /// Whether shoppers are answered by the OpenAI-compatible provider.
    pub fn uses_openai(&self) -> bool {
        match self.provider {
            ProviderChoice::Openai => true,
            ProviderChoice::Offline => false,
            ProviderChoice::Auto => !self.api_key.is_empty(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfflineSettings {
    pub token_delay_ms: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WidgetSettings {
    pub heartbeat_interval_secs: f64,
    pub client_timeout_secs: f64,
    pub hello_timeout_secs: f64,
    pub max_frame_bytes: usize,
    pub max_message_chars: usize,
    pub messages_per_minute: u32,
    pub new_sessions_per_ip_per_minute: u32,
    pub retrieval_limit: usize,
    pub history_messages: usize,
    pub max_protocol_errors: u32,
    pub outgoing_buffer: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    pub enabled: bool,
    pub store_id: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event, its spans' fields first.
    Text,
    /// One JSON object per line, with the event's spans and their fields.
    Json,
}

impl Settings {
    /// Loads defaults, then `file`, then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`load`](Self::load), with the environment given explicitly.
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                .source(Some(env)),
        );
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        settings.read_token_file()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Reads `operator.api_token_file`, if set, into `operator.api_token`.
    fn read_token_file(&mut self) -> Result<(), ConfigError> {
        let path = self.operator.api_token_file.trim();
        if path.is_empty() {
            return Ok(());
        }
        let invalid = |problem: String| ConfigError::Invalid {
            key: "operator.api_token_file",
            problem,
        };
        if !self.operator.api_token.is_empty() {
            return Err(invalid(
                "is set together with operator.api_token: set one of them".into(),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(format!("is {path:?}, which cannot be read: {e}")))?;
        let token = text.lines().next().unwrap_or("").trim().to_owned();
        self.operator.api_token = Secret(token);
        Ok(())
    }

    fn validate_dashboard(&self) -> Result<(), ConfigError> {
        let d = &self.dashboard;
        let invalid = |key: &'static str, problem: &str| ConfigError::Invalid {
            key,
            problem: problem.to_owned(),
        };
        for (key, value) in [
            ("dashboard.session_idle_minutes", d.session_idle_minutes),
            ("dashboard.session_absolute_hours", d.session_absolute_hours),
            ("dashboard.login_window_minutes", d.login_window_minutes),
            ("dashboard.verify_link_hours", d.verify_link_hours),
            ("dashboard.reset_link_minutes", d.reset_link_minutes),
            ("dashboard.invite_link_days", d.invite_link_days),
            (
                "dashboard.unverified_account_days",
                d.unverified_account_days,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "is 0: expected a positive number"));
            }
        }
        for (key, value) in [
            (
                "dashboard.login_failures_per_account",
                d.login_failures_per_account,
            ),
            (
                "dashboard.login_failures_per_address",
                d.login_failures_per_address,
            ),
            (
                "dashboard.emails_per_address_per_hour",
                d.emails_per_address_per_hour,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "is 0: expected a positive number"));
            }
        }
        if d.session_idle_minutes > d.session_absolute_hours * 60 {
            return Err(invalid(
                "dashboard.session_idle_minutes",
                "is longer than dashboard.session_absolute_hours",
            ));
        }
        if d.demo_owner && crate::accounts::validate::email(&d.demo_owner_email).is_err() {
            return Err(invalid(
                "dashboard.demo_owner_email",
                "is not an address like name@example.com",
            ));
        }
        if crate::email::parse_mailbox(&self.email.from).is_none() {
            return Err(invalid(
                "email.from",
                "is not a mailbox like `Mikabot <no-reply@shop.example>`",
            ));
        }
        Ok(())
    }

    /// Checks every value; `Application::build` checks again, so settings
    /// changed in code are held to the same rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, problem: impl Into<String>) -> ConfigError {
            ConfigError::Invalid {
                key,
                problem: problem.into(),
            }
        }
        fn http_url(key: &'static str, value: &str) -> Result<(), ConfigError> {
            let rest = value
                .strip_prefix("http://")
                .or_else(|| value.strip_prefix("https://"));
            match rest {
                Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
                _ => Err(invalid(
                    key,
                    format!("is {value:?}: expected an http:// or https:// URL with a host"),
                )),
            }
        }
        fn positive(key: &'static str, value: f64) -> Result<(), ConfigError> {
            if value.is_finite() && value > 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    key,
                    format!("is {value}: expected a number of seconds above 0"),
                ))
            }
        }
        http_url("server.public_url", &self.server.public_url)?;
        let token = self.operator.api_token.expose().trim();
        if !token.is_empty() && token.chars().count() < MIN_OPERATOR_TOKEN_CHARS {
            return Err(invalid(
                "operator.api_token",
                format!(
                    "is {} characters: an operator token has at least {MIN_OPERATOR_TOKEN_CHARS} \
                     (for example `openssl rand -hex 24`)",
                    token.chars().count()
                ),
            ));
        }
        if self.operator.failed_attempts_per_minute == 0 {
            return Err(invalid(
                "operator.failed_attempts_per_minute",
                "is 0: expected a positive number",
            ));
        }
        for raw in &self.server.trusted_proxies {
            if let Err(error) = raw.parse::<crate::http::address::Cidr>() {
                return Err(invalid("server.trusted_proxies", format!("has {error}")));
            }
        }
        if !(16..=128).contains(&self.server.ipv6_limit_prefix) {
            return Err(invalid(
                "server.ipv6_limit_prefix",
                format!(
                    "is {}: expected a prefix length from 16 to 128",
                    self.server.ipv6_limit_prefix
                ),
            ));
        }
        self.validate_dashboard()?;
        positive("desk.idle_return_secs", self.desk.idle_return_secs)?;
        positive("desk.linger_secs", self.desk.linger_secs)?;
        for (key, value) in [
            ("desk.watcher_buffer", self.desk.watcher_buffer as u64),
            ("desk.max_message_chars", self.desk.max_message_chars as u64),
        ] {
            if value == 0 {
                return Err(invalid(key, "is 0: expected a positive number"));
            }
        }
        for (key, value) in [
            (
                "privacy.retention_sweep_minutes",
                self.privacy.retention_sweep_minutes,
            ),
            (
                "privacy.erasure_interval_secs",
                self.privacy.erasure_interval_secs,
            ),
            (
                "privacy.technical_data_months",
                u64::from(self.privacy.technical_data_months),
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "is 0: expected a positive number"));
            }
        }
        if !self.storage.master_key.is_empty()
            && crate::storage::keyring::key_from_text(self.storage.master_key.expose()).is_none()
        {
            return Err(invalid(
                "storage.master_key",
                "is not a key: expected 32 bytes as base64url (43 characters) or hex (64)",
            ));
        }
        http_url("model.base_url", &self.model.base_url)?;
        if self.model.model.trim().is_empty() {
            return Err(invalid("model.model", "is empty: expected a model name"));
        }
        if !(0.0..=2.0).contains(&self.model.temperature) {
            return Err(invalid(
                "model.temperature",
                format!(
                    "is {}: expected a number from 0 to 2",
                    self.model.temperature
                ),
            ));
        }
        if self.model.max_tokens == 0 || self.model.timeout_secs == 0 {
            return Err(invalid(
                "model.max_tokens / model.timeout_secs",
                "is 0: expected a positive number",
            ));
        }
        if self.model.retry_base_delay_ms == 0
            || self.model.retry_max_delay_ms < self.model.retry_base_delay_ms
        {
            return Err(invalid(
                "model.retry_max_delay_ms",
                "must be at least model.retry_base_delay_ms, which must be above 0",
            ));
        }
        if self.model.query_rewrite_ms > MAX_QUERY_REWRITE_MS {
            return Err(invalid(
                "model.query_rewrite_ms",
                format!(
                    "is {}: expected 0 (off) to {MAX_QUERY_REWRITE_MS}; a rewrite delays every reply's first token",
                    self.model.query_rewrite_ms
                ),
            ));
        }
        positive(
            "widget.heartbeat_interval_secs",
            self.widget.heartbeat_interval_secs,
        )?;
        positive(
            "widget.client_timeout_secs",
            self.widget.client_timeout_secs,
        )?;
        positive("widget.hello_timeout_secs", self.widget.hello_timeout_secs)?;
        if self.widget.client_timeout_secs <= self.widget.heartbeat_interval_secs {
            return Err(invalid(
                "widget.client_timeout_secs",
                "must be longer than widget.heartbeat_interval_secs",
            ));
        }
        for (key, value) in [
            ("widget.max_frame_bytes", self.widget.max_frame_bytes),
            ("widget.max_message_chars", self.widget.max_message_chars),
            ("widget.retrieval_limit", self.widget.retrieval_limit),
            ("widget.outgoing_buffer", self.widget.outgoing_buffer),
            ("import.max_upload_bytes", self.import.max_upload_bytes),
            (
                "storage.cache_capacity_mb",
                self.storage.cache_capacity_mb as usize,
            ),
            (
                "widget.messages_per_minute",
                self.widget.messages_per_minute as usize,
            ),
            (
                "widget.new_sessions_per_ip_per_minute",
                self.widget.new_sessions_per_ip_per_minute as usize,
            ),
            ("storage.flush_queue", self.storage.flush_queue),
            (
                "limits.sessions_per_address",
                self.limits.sessions_per_address,
            ),
            ("limits.sessions_per_node", self.limits.sessions_per_node),
            (
                "limits.sessions_per_ipv6_network",
                self.limits.sessions_per_ipv6_network,
            ),
            (
                "limits.new_conversations_per_address_per_hour",
                self.limits.new_conversations_per_address_per_hour as usize,
            ),
            (
                "limits.messages_per_address_per_minute",
                self.limits.messages_per_address_per_minute as usize,
            ),
            (
                "model.breaker_failures",
                self.model.breaker_failures as usize,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "is 0: expected a positive number"));
            }
        }
        if self.demo.enabled && mikabot_actors::ids::StoreId::parse(&self.demo.store_id).is_err() {
            return Err(invalid(
                "demo.store_id",
                "expected 1 to 64 characters of a-z, 0-9 and '-'",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_load_and_choose_the_offline_model() {
        let settings = Settings::load_with_env(None, env(&[])).expect("defaults are valid");
        assert_eq!(settings.server.port, 8080);
        assert!(!settings.model.uses_openai());
    }

    #[test]
    fn environment_overrides_defaults() {
        let settings = Settings::load_with_env(
            None,
            env(&[
                ("MIKABOT__SERVER__PORT", "9001"),
                ("MIKABOT__MODEL__API_KEY", "sk-x"),
            ]),
        )
        .expect("overrides are valid");
        assert_eq!(settings.server.port, 9001);
        assert!(settings.model.uses_openai());
        assert!(
            !format!("{:?}", settings.model).contains("sk-x"),
            "key never prints"
        );
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let error = Settings::load_with_env(None, env(&[("MIKABOT__SERVER__PORT", "eighty")]))
            .expect_err("a port is a number");
        assert!(error.to_string().contains("server.port"), "{error}");
        let error = Settings::load_with_env(None, env(&[("MIKABOT__MODEL__TEMPERATURE", "7")]))
            .expect_err("temperature is bounded");
        assert!(error.to_string().contains("model.temperature"), "{error}");
        let error =
            Settings::load_with_env(None, env(&[("MIKABOT__MODEL__QUERY_REWRITE_MS", "60000")]))
                .expect_err("a rewrite budget is bounded");
        assert!(
            error.to_string().contains("model.query_rewrite_ms"),
            "{error}"
        );
        let on = Settings::load_with_env(None, env(&[("MIKABOT__MODEL__QUERY_REWRITE_MS", "400")]))
            .expect("a budget within bounds");
        assert_eq!(on.model.query_rewrite_ms, 400);
    }

    #[test]
    fn unknown_keys_and_missing_files_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[server]\nprot = 1\n").expect("write");
        let error = Settings::load_with_env(Some(&path), env(&[])).expect_err("typo");
        assert!(error.to_string().contains("prot"), "{error}");
        let missing = dir.path().join("missing.toml");
        assert!(Settings::load_with_env(Some(&missing), env(&[])).is_err());
    }

    #[test]
    fn trusted_proxies_come_as_a_list_and_bad_networks_are_named() {
        let settings = Settings::load_with_env(
            None,
            env(&[("MIKABOT__SERVER__TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8")]),
        )
        .expect("two networks");
        let networks: Vec<String> = settings
            .server
            .trusted_networks()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(networks, ["127.0.0.1/32", "10.0.0.0/8"]);
        let error = Settings::load_with_env(
            None,
            env(&[("MIKABOT__SERVER__TRUSTED_PROXIES", "10.0.0.0/40")]),
        )
        .expect_err("a /40 in IPv4");
        let shown = error.to_string();
        assert!(
            shown.contains("server.trusted_proxies") && shown.contains("10.0.0.0/40"),
            "{shown}"
        );
        let error =
            Settings::load_with_env(None, env(&[("MIKABOT__SERVER__IPV6_LIMIT_PREFIX", "8")]))
                .expect_err("too wide");
        assert!(
            error.to_string().contains("server.ipv6_limit_prefix"),
            "{error}"
        );
    }
}
