//! StartDeliveryStreamEncryption and StopDeliveryStreamEncryption, with
//! AWS's transitions: ENABLING → ENABLED, DISABLING → DISABLED, each
//! lasting the status delay.

use crate::error::{FirehoseError, Result};
use crate::state::{Msg, Sse, SseStatus};
use crate::{model, Ctx, Service, StreamKey};

/// A key configuration's consistency: a customer-managed key names its
/// ARN, an AWS-owned one does not.
pub(crate) fn check_key(c: &model::DeliveryStreamEncryptionConfigurationInput) -> Result<()> {
    match (c.key_type.as_str(), c.key_arn.is_some()) {
        ("CUSTOMER_MANAGED_CMK", false) => Err(FirehoseError::InvalidArgument(
            "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.".into(),
        )),
        ("AWS_OWNED_CMK", true) => Err(FirehoseError::InvalidArgument(
            "KeyARN is not allowed when KeyType is AWS_OWNED_CMK.".into(),
        )),
        _ => Ok(()),
    }
}

/// StartDeliveryStreamEncryption.
pub async fn start(
    svc: &Service,
    ctx: &Ctx,
    i: model::StartDeliveryStreamEncryptionInput,
) -> Result<model::StartDeliveryStreamEncryptionOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    let c = i.delivery_stream_encryption_configuration_input.unwrap_or(
        model::DeliveryStreamEncryptionConfigurationInput {
            key_arn: None,
            key_type: "AWS_OWNED_CMK".into(),
        },
    );
    check_key(&c)?;
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    svc.update_key(&key, |s| {
        if s.is_kinesis_source() {
            return Err(Msg::not_permitted_on_kinesis_source());
        }
        s.sse = Some(Sse {
            key_type: c.key_type,
            key_arn: c.key_arn,
            status: SseStatus::Enabling { until_ms },
        });
        Ok(())
    })
    .await?;
    Ok(model::StartDeliveryStreamEncryptionOutput {})
}

/// StopDeliveryStreamEncryption.
pub async fn stop(
    svc: &Service,
    ctx: &Ctx,
    i: model::StopDeliveryStreamEncryptionInput,
) -> Result<model::StopDeliveryStreamEncryptionOutput> {
    let key: StreamKey = (ctx.region.clone(), i.delivery_stream_name);
    let until_ms = svc.now_ms() + svc.cfg.status_delay_ms;
    svc.update_key(&key, |s| {
        if s.is_kinesis_source() {
            return Err(Msg::not_permitted_on_kinesis_source());
        }
        if let Some(sse) = s.sse.as_mut() {
            if !matches!(
                sse.status,
                SseStatus::Disabled | SseStatus::Disabling { .. }
            ) {
                sse.status = SseStatus::Disabling { until_ms };
            }
        }
        Ok(())
    })
    .await?;
    Ok(model::StopDeliveryStreamEncryptionOutput {})
}
