//! `ai.image`: a picture from a prompt, saved into the user's files.

use super::*;

impl AiService {
    /// Make an image and save it into the user's files, as the calling app.
    pub(super) async fn image(
        &self,
        on: OnBehalf,
        ask: ai::Image,
    ) -> Result<ai::ImageSaved, ErrorBody> {
        use aether_proto::api::vfs;
        if ask.prompt.trim().is_empty() {
            return Err(bad("`prompt` is empty"));
        }
        if ask.prompt.len() > ai::MAX_PROMPT_BYTES {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                "the prompt is over 1 MiB",
            ));
        }
        if !ask.path.starts_with('/') {
            return Err(bad("`path` must be absolute, e.g. /images/cat.png"));
        }
        let provider = self.pick(ask.provider.as_deref())?;
        if let Some(model) = &ask.model {
            provider::check_model(model)?;
        }
        let input = estimate(ask.prompt.len(), 0);
        let reservation = self
            .quota
            .reserve(on.caller.user_id, &on.app, input.input, Some(0))
            .await?;
        let model = ask.model.unwrap_or_else(|| provider.model.clone());
        let cancel = self.shutdown.child_token();
        let result = self
            .with_retries(provider, &cancel, &mut |_| {}, || {
                provider.image(&ask.prompt, &model)
            })
            .await;
        // Providers do not count an image's tokens back here: the prompt's are estimated.
        reservation
            .settle(if result.is_ok() {
                input
            } else {
                TokenUsage::default()
            })
            .await;
        let (mime, data) = result?;
        let extension = match mime.as_str() {
            "image/jpeg" => "jpg",
            "image/webp" => "webp",
            "image/gif" => "gif",
            _ => "png",
        };
        let name = ask.path.rsplit('/').next().unwrap_or_default();
        let path = if name.contains('.') {
            ask.path.clone()
        } else {
            format!("{}.{extension}", ask.path)
        };
        let written = self
            .requester
            .request_as(
                &on,
                &vfs::Write {
                    path: path.clone(),
                    data,
                    encoding: vfs::Encoding::Base64,
                    parents: true,
                    ..Default::default()
                },
                Duration::from_secs(60),
            )
            .await?;
        let vfs::WriteAnswer::Committed { path, size, .. } = written else {
            return Err(ErrorBody::new(
                ErrorCode::Internal,
                "the image's write did not complete",
            ));
        };
        Ok(ai::ImageSaved {
            path,
            mime,
            size,
            provider: provider.name.clone(),
            model,
        })
    }
}
