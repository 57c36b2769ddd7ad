//! Image previews: decoded here (PNG, JPEG, GIF, BMP, WebP), drawn with half-blocks so
//! they show on any terminal, tmux and SSH included (ratatui-image).

use std::cell::RefCell;

use ratatui::buffer::Buffer;
use ratatui::layout::{Rect, Size};
use ratatui::widgets::Widget;
use ratatui_image::picker::Picker;
use ratatui_image::protocol::Protocol;
use ratatui_image::{Image, Resize};

/// The most of an image file the preview reads (one read of the daemon's chunk limit).
pub const IMAGE_BYTES: usize = 2 << 20;
/// Decoded images are scaled down to this at most: a preview never needs more, and a
/// photo decoded whole would hold tens of MiB.
const MAX_SIDE: u32 = 512;

pub fn is_image(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

pub struct ImagePreview {
    pub width: u32,
    pub height: u32,
    image: image::DynamicImage,
    /// Drawn for one area size; redone when the window changes size.
    drawn: RefCell<Option<(Size, Protocol)>>,
}

impl std::fmt::Debug for ImagePreview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImagePreview({}x{})", self.width, self.height)
    }
}

impl Clone for ImagePreview {
    fn clone(&self) -> Self {
        ImagePreview {
            width: self.width,
            height: self.height,
            image: self.image.clone(),
            drawn: RefCell::new(None),
        }
    }
}

impl PartialEq for ImagePreview {
    fn eq(&self, other: &Self) -> bool {
        self.width == other.width && self.height == other.height
    }
}

impl ImagePreview {
    /// Decode the bytes; `None` when they are not an image we read (then hex it is).
    pub fn decode(bytes: &[u8]) -> Option<ImagePreview> {
        let image = image::load_from_memory(bytes).ok()?;
        let (width, height) = (image.width(), image.height());
        let image = if width > MAX_SIDE || height > MAX_SIDE {
            image.thumbnail(MAX_SIDE, MAX_SIDE)
        } else {
            image
        };
        Some(ImagePreview {
            width,
            height,
            image,
            drawn: RefCell::new(None),
        })
    }

    pub fn render(&self, area: Rect, buf: &mut Buffer) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let size = Size::new(area.width, area.height);
        let mut drawn = self.drawn.borrow_mut();
        if drawn.as_ref().is_none_or(|(at, _)| *at != size) {
            let picker = Picker::halfblocks();
            // Scaled up too: a small icon fills the pane rather than a corner of it.
            let protocol = picker
                .new_protocol(self.image.clone(), size, Resize::Scale(None))
                .ok();
            *drawn = protocol.map(|p| (size, p));
        }
        if let Some((_, protocol)) = drawn.as_ref() {
            Image::new(protocol).render(area, buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, _| {
            if x < width / 2 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, image::ImageFormat::Png).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn an_image_draws_in_half_blocks_and_garbage_is_not_an_image() {
        let preview = ImagePreview::decode(&png(40, 20)).expect("a PNG");
        assert_eq!((preview.width, preview.height), (40, 20));
        let area = Rect::new(0, 0, 20, 5);
        let mut buf = Buffer::empty(area);
        preview.render(area, &mut buf);
        let coloured = (0..20)
            .filter(|x| buf[(*x, 2)].fg != ratatui::style::Color::Reset)
            .count();
        assert!(coloured > 10, "{buf:?}");
        assert!(ImagePreview::decode(b"\x89PNG not really").is_none());
        let big = ImagePreview::decode(&png(2000, 100)).unwrap();
        assert_eq!(big.image.width(), MAX_SIDE, "scaled down, sizes kept");
        assert_eq!(big.width, 2000);
        assert!(is_image("/a/Photo.JPG") && !is_image("/a/notes.txt"));
    }
}
