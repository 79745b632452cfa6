//! GetImages' pictures: the H.264 key frame at or before a time, decoded
//! with OpenH264 and encoded as JPEG or PNG at the asked size.
//!
//! Only key frames are decoded: the picture for a time is its fragment's
//! latest key frame at or before it (fragments start with one), which is
//! also what makes each picture cost one frame's decoding.

use ::image::codecs::jpeg::JpegEncoder;
use ::image::codecs::png::PngEncoder;
use ::image::imageops::{self, FilterType};
use ::image::{ExtendedColorType, ImageEncoder, RgbImage};

use super::codec::{VideoCodec, VideoConfig};
use super::{Fragment, MediaError};

/// The picture's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// Quality 1 (smallest) to 100 (best); AWS's default is 80.
    Jpeg {
        quality: u8,
    },
    Png,
}

/// Which of a fragment's timestamps `at_ms` is on (ImageSelectorType).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Producer,
    Server,
}

/// What to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRequest {
    /// The picture's time, ms since the epoch.
    pub at_ms: i64,
    pub clock: Clock,
    pub format: ImageFormat,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Why there is no picture: AWS's `ImageError` values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// No media exists at that time.
    #[error("no media at the requested time")]
    NoMedia,
    /// The media there gives no picture: audio only, a codec that cannot
    /// be decoded, or frames that do not decode.
    #[error("{0}")]
    MediaError(String),
}

impl ImageError {
    /// The `Error` value of the image in GetImages' answer.
    pub fn aws_value(&self) -> &'static str {
        match self {
            ImageError::NoMedia => "NO_MEDIA",
            ImageError::MediaError(_) => "MEDIA_ERROR",
        }
    }
}

impl From<MediaError> for ImageError {
    fn from(e: MediaError) -> ImageError {
        ImageError::MediaError(e.to_string())
    }
}

/// The output size for a source of `src`: both given, exactly that
/// (stretched); one given, the other from the source's aspect ratio;
/// neither, the source's size.
pub fn output_size(src: (u32, u32), width: Option<u32>, height: Option<u32>) -> (u32, u32) {
    let (sw, sh) = (src.0.max(1) as u64, src.1.max(1) as u64);
    let scaled = |num: u64, a: u64, b: u64| ((num * a + b / 2) / b).max(1) as u32;
    match (width, height) {
        (Some(w), Some(h)) => (w.max(1), h.max(1)),
        (Some(w), None) => (w.max(1), scaled(w as u64, sh, sw)),
        (None, Some(h)) => (scaled(h as u64, sw, sh), h.max(1)),
        (None, None) => (src.0, src.1),
    }
}

/// The picture of the stream at `req.at_ms` from the fragments around it.
pub fn render(fragments: &[Fragment], req: &ImageRequest) -> Result<Vec<u8>, ImageError> {
    let base = |f: &Fragment| match req.clock {
        Clock::Producer => f.producer_ms,
        Clock::Server => f.server_ms,
    };
    // A frame's time on the requested clock, in ns.
    let time_ns = |f: &Fragment, timecode: i64| {
        f.frame_ns(timecode) + (base(f) - f.producer_ms) as i128 * 1_000_000
    };
    let at = req.at_ms as i128 * 1_000_000;
    let covering = fragments.iter().find(|f| {
        let Some(first) = f.cluster.frames.iter().map(|x| x.timecode).min() else {
            return false;
        };
        let start = time_ns(f, first);
        let end = start + (f.duration_ms() * 1e6) as i128;
        start <= at && at <= end
    });
    let Some(f) = covering else {
        return Err(ImageError::NoMedia);
    };
    let Some(track) = f.header.tracks.iter().find(|t| t.is_video()) else {
        return Err(ImageError::MediaError(
            "the media at the requested time has no video".into(),
        ));
    };
    let config = VideoConfig::from_track(track)?;
    if config.codec != VideoCodec::H264 {
        return Err(ImageError::MediaError(format!(
            "pictures of {} video cannot be made",
            track.codec_id
        )));
    }
    let key = f
        .cluster
        .frames
        .iter()
        .filter(|x| x.track == track.number && x.keyframe && time_ns(f, x.timecode) <= at)
        .max_by_key(|x| x.timecode)
        .ok_or(ImageError::NoMedia)?;

    let mut annex_b = Vec::with_capacity(key.data.len() + 64);
    for p in &config.parameter_sets {
        annex_b.extend_from_slice(&[0, 0, 0, 1]);
        annex_b.extend_from_slice(p);
    }
    for nal in config.nal_units(&key.data)? {
        annex_b.extend_from_slice(&[0, 0, 0, 1]);
        annex_b.extend_from_slice(nal);
    }
    let picture = decode(&annex_b)?;
    let (w, h) = output_size((picture.width(), picture.height()), req.width, req.height);
    let picture = if (w, h) == picture.dimensions() {
        picture
    } else {
        imageops::resize(&picture, w, h, FilterType::Triangle)
    };
    let mut out = Vec::new();
    let encoded = match req.format {
        ImageFormat::Jpeg { quality } => JpegEncoder::new_with_quality(
            &mut out,
            quality.clamp(1, 100),
        )
        .write_image(picture.as_raw(), w, h, ExtendedColorType::Rgb8),
        ImageFormat::Png => {
            PngEncoder::new(&mut out).write_image(picture.as_raw(), w, h, ExtendedColorType::Rgb8)
        }
    };
    encoded.map_err(|e| ImageError::MediaError(format!("the picture cannot be encoded: {e}")))?;
    Ok(out)
}

/// Decodes one access unit (parameter sets first) to RGB.
fn decode(annex_b: &[u8]) -> Result<RgbImage, ImageError> {
    use openh264::formats::YUVSource;
    let fail =
        |e: openh264::Error| ImageError::MediaError(format!("the key frame does not decode: {e}"));
    let mut decoder = openh264::decoder::Decoder::new().map_err(fail)?;
    let to_rgb = |yuv: &openh264::decoder::DecodedYUV<'_>| {
        let (w, h) = yuv.dimensions();
        let mut rgb = vec![0u8; w * h * 3];
        yuv.write_rgb8(&mut rgb);
        RgbImage::from_raw(w as u32, h as u32, rgb)
    };
    let picture = match decoder.decode(annex_b).map_err(fail)? {
        Some(yuv) => to_rgb(&yuv),
        None => decoder
            .flush_remaining()
            .map_err(fail)?
            .first()
            .and_then(to_rgb),
    };
    picture.ok_or_else(|| ImageError::MediaError("the key frame gives no picture".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_side_keeps_the_aspect_ratio() {
        assert_eq!(output_size((320, 240), None, None), (320, 240));
        assert_eq!(output_size((320, 240), Some(160), None), (160, 120));
        assert_eq!(output_size((320, 240), None, Some(60)), (80, 60));
        assert_eq!(output_size((320, 240), Some(100), Some(50)), (100, 50));
        assert_eq!(output_size((1920, 1080), None, Some(101)), (180, 101));
        assert_eq!(output_size((1920, 1080), Some(1), None), (1, 1));
    }

    #[test]
    fn errors_carry_aws_values() {
        assert_eq!(ImageError::NoMedia.aws_value(), "NO_MEDIA");
        assert_eq!(
            ImageError::MediaError("x".into()).aws_value(),
            "MEDIA_ERROR"
        );
    }
}
