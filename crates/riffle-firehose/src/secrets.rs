//! Destination credentials kept in AWS Secrets Manager
//! (`SecretsManagerConfiguration`): when `Enabled`, the secret `SecretARN`
//! names is read at every delivery attempt, so a new value (PutSecretValue)
//! takes effect at the next attempt without UpdateDestination. The secret
//! is a JSON object with the keys AWS documents per destination: HTTP
//! endpoints `{"api_key"}`, Redshift `{"username", "password"}`.
//!
//! A secret that cannot be read fails the attempt as any delivery failure
//! does (retried, then the destination's error handling), with the error
//! codes below; AWS does not publish its own, these are Riffle's.

use std::sync::Arc;

use serde_json::Value as Json;

use crate::deliver::DeliveryError;

/// The secret does not exist, is scheduled for deletion or has no
/// SecretString.
pub const NOT_FOUND: &str = "SecretsManager.SecretNotFound";
/// The SecretString is not a JSON object with the keys the destination
/// needs.
pub const INVALID_FORMAT: &str = "SecretsManager.InvalidSecretFormat";

/// Where secrets are read: the server's Secrets Manager, in process.
pub trait Secrets: Send + Sync {
    /// The SecretString of the AWSCURRENT version of the secret `arn`
    /// names, or why there is none.
    fn current(&self, arn: &str) -> Result<String, String>;
}

#[derive(Clone)]
pub struct SecretsRef(pub Arc<dyn Secrets>);

impl std::fmt::Debug for SecretsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsRef")
    }
}

/// A destination description's SecretsManagerConfiguration, when enabled:
/// the secret's ARN (empty when the configuration names none).
pub fn configured(doc: &Json) -> Option<String> {
    let c = doc.get("SecretsManagerConfiguration")?;
    c.get("Enabled")
        .and_then(Json::as_bool)
        .unwrap_or(false)
        .then(|| {
            c.get("SecretARN")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned()
        })
}

fn fail(code: &str, message: String) -> DeliveryError {
    DeliveryError {
        code: code.into(),
        message,
    }
}

/// The string values of `keys` in the secret `arn` names; `optional` keys
/// may be missing (they come back empty).
pub fn read(
    secrets: Option<&SecretsRef>,
    arn: &str,
    keys: &[&str],
    optional: &[&str],
) -> Result<Vec<String>, DeliveryError> {
    if arn.is_empty() {
        return Err(fail(
            NOT_FOUND,
            "SecretsManagerConfiguration is enabled but names no SecretARN.".into(),
        ));
    }
    let secrets = secrets.ok_or_else(|| {
        fail(
            NOT_FOUND,
            format!("Secrets Manager is not available on this server to read {arn}."),
        )
    })?;
    let text = secrets.0.current(arn).map_err(|m| fail(NOT_FOUND, m))?;
    let doc: Json = serde_json::from_str(&text).map_err(|_| {
        fail(
            INVALID_FORMAT,
            format!(
                "The secret {arn} is not a JSON object; expected the keys {}.",
                keys.join(", ")
            ),
        )
    })?;
    keys.iter()
        .map(|k| match doc.get(*k) {
            Some(Json::String(v)) => Ok(v.clone()),
            None if optional.contains(k) => Ok(String::new()),
            _ => Err(fail(
                INVALID_FORMAT,
                format!("The secret {arn} has no string value for the key \"{k}\"."),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct One(&'static str);

    impl Secrets for One {
        fn current(&self, arn: &str) -> Result<String, String> {
            match arn {
                "arn:s" => Ok(self.0.into()),
                _ => Err(format!("Secrets Manager can't find the secret {arn}.")),
            }
        }
    }

    fn with(text: &'static str) -> SecretsRef {
        SecretsRef(Arc::new(One(text)))
    }

    #[test]
    fn configuration_is_read_only_when_enabled() {
        let on = json!({"SecretsManagerConfiguration": {"Enabled": true, "SecretARN": "arn:s"}});
        let off = json!({"SecretsManagerConfiguration": {"Enabled": false, "SecretARN": "arn:s"}});
        let bare = json!({"SecretsManagerConfiguration": {"Enabled": true}});
        assert_eq!(configured(&on).as_deref(), Some("arn:s"));
        assert_eq!(configured(&off), None);
        assert_eq!(configured(&json!({})), None);
        assert_eq!(configured(&bare).as_deref(), Some(""));
    }

    #[test]
    fn keys_come_from_the_json_secret() {
        let s = with(r#"{"username": "loader", "password": "pw"}"#);
        assert_eq!(
            read(Some(&s), "arn:s", &["username", "password"], &[]).unwrap(),
            vec!["loader".to_owned(), "pw".to_owned()]
        );
        let e = read(Some(&s), "arn:s", &["api_key"], &[]).unwrap_err();
        assert_eq!(e.code, INVALID_FORMAT);
        assert_eq!(
            e.message,
            "The secret arn:s has no string value for the key \"api_key\"."
        );
        assert_eq!(
            read(
                Some(&s),
                "arn:s",
                &["username", "key_passphrase"],
                &["key_passphrase"]
            )
            .unwrap(),
            vec!["loader".to_owned(), String::new()]
        );
        let e = read(Some(&with("plain")), "arn:s", &["api_key"], &[]).unwrap_err();
        assert_eq!(e.code, INVALID_FORMAT);
        let e = read(Some(&s), "arn:other", &["api_key"], &[]).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (
                NOT_FOUND,
                "Secrets Manager can't find the secret arn:other."
            )
        );
        assert_eq!(
            read(None, "arn:s", &["api_key"], &[]).unwrap_err().code,
            NOT_FOUND
        );
        assert_eq!(
            read(Some(&s), "", &["api_key"], &[]).unwrap_err().code,
            NOT_FOUND
        );
    }
}
