//! QR codes of short links, as SVG.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// An SVG QR code of `text` (a short URL), medium error correction, at
/// least 200 px wide, with the quiet zone scanners need.
///
/// # Errors
///
/// When `text` is too long for a QR code (short URLs never are).
pub fn svg(text: &str) -> Result<String, String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| e.to_string())?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_an_svg_image() {
        let svg = super::svg("http://127.0.0.1:8080/Xk3p9Qa").unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("<svg"));
        assert!(svg.contains("<path"));
    }
}
